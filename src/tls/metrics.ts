// `portcullis_tls_certificate_expiry_seconds{listener,certificate}`: seconds until each served certificate
// expires (negative once expired). Registered once per process in prom-client's default registry and
// computed at scrape time, so it is always current; TLS managers add and remove their series.
import { Gauge, register } from 'prom-client';

export const EXPIRY_METRIC = 'portcullis_tls_certificate_expiry_seconds';

interface Series { owner: object; listener: string; certificate: string; notAfter: number }
const series = new Map<string, Series>();

type ExpiryGauge = Gauge<'listener' | 'certificate'>;

function gauge(): ExpiryGauge {
  const existing = register.getSingleMetric(EXPIRY_METRIC);
  if (existing !== undefined) return existing as ExpiryGauge;
  return new Gauge({
    name: EXPIRY_METRIC,
    help: 'Seconds until the TLS certificate served by a listener expires (negative when expired)',
    labelNames: ['listener', 'certificate'] as const,
    collect() {
      const now = Date.now();
      for (const s of series.values()) this.set({ listener: s.listener, certificate: s.certificate }, Math.round((s.notAfter - now) / 1000));
    },
  });
}

const key = (listener: string, certificate: string): string => `${listener}\u0000${certificate}`;

/** Replaces the series an owner (a TLS manager) publishes for a listener. */
export function publishExpiry(owner: object, listener: string, certs: readonly { name: string; notAfter: number }[]): void {
  const g = gauge();
  const now = Date.now();
  const keep = new Set<string>();
  for (const c of certs) {
    const k = key(listener, c.name);
    keep.add(k);
    series.set(k, { owner, listener, certificate: c.name, notAfter: c.notAfter });
    g.set({ listener, certificate: c.name }, Math.round((c.notAfter - now) / 1000));
  }
  for (const [k, s] of series) {
    if (s.owner === owner && !keep.has(k)) { series.delete(k); g.remove({ listener: s.listener, certificate: s.certificate }); }
  }
}

/** Removes an owner's series (a closed listener); series since taken over by another owner stay. */
export function withdrawExpiry(owner: object): void {
  const g = gauge();
  for (const [k, s] of series) {
    if (s.owner === owner) { series.delete(k); g.remove({ listener: s.listener, certificate: s.certificate }); }
  }
}
