// The security event bus: every refused authentication, authorization, attestation or DPoP check (and
// later WAF, rate-limit and ban decisions) is published here as one structured event. Subscribers — the
// security log line and the metrics counter today, alerting and SIEM export later — never see a
// credential: events carry reasons and ids only.
import { Counter, register } from 'prom-client';
import type { Logger } from './logger.js';

export interface SecurityEvent {
  /** what kind of check failed: 'authentication' | 'authorization' | 'attestation' | 'dpop' | ... */
  readonly type: string;
  /** short machine-readable reason, e.g. 'token-expired', 'api-key-revoked', 'insufficient-scope' */
  readonly reason: string;
  readonly route: string;
  readonly clientIp: string;
  readonly requestId: string;
  /** consumer id, when it is known (e.g. a valid key used from a wrong IP) */
  readonly consumer?: string;
  /** authentication method involved ('api-key', 'jwt', 'introspection', ...) */
  readonly method?: string;
  /** API key id or token issuer: never the credential */
  readonly credentialId?: string;
  readonly time: number;
}

export type SecurityEventListener = (e: SecurityEvent) => void;

export class SecurityEventBus {
  private listeners: SecurityEventListener[] = [];

  /** Returns an unsubscribe function. */
  subscribe(fn: SecurityEventListener): () => void {
    this.listeners = [...this.listeners, fn];
    return () => { this.listeners = this.listeners.filter((l) => l !== fn); };
  }

  emit(e: SecurityEvent): void {
    // A failing subscriber must never break the request that triggered the event.
    for (const l of this.listeners) {
      try { l(e); } catch { /* subscriber bug: ignored here, subscribers log their own errors */ }
    }
  }
}

let eventsCounter: Counter<'type' | 'reason' | 'route'> | undefined;
function counter(): Counter<'type' | 'reason' | 'route'> {
  eventsCounter ??= (register.getSingleMetric('portcullis_security_events_total') as Counter<'type' | 'reason' | 'route'> | undefined)
    ?? new Counter({ name: 'portcullis_security_events_total', help: 'Refused requests by security check and reason', labelNames: ['type', 'reason', 'route'] });
  return eventsCounter;
}

/** Log lines per (type, reason, route) per window; the rest are counted and reported with the next line. */
export const SECURITY_LOG_BURST = 20;
export const SECURITY_LOG_WINDOW_MS = 10_000;

interface LogWindow { start: number; logged: number; suppressed: number }

/**
 * The standard subscribers: a Prometheus counter for every event, and a warn-level `security` log line,
 * at most SECURITY_LOG_BURST per (type, reason, route) per 10 s. A flood of refusals (what rate limits
 * and bulkheads exist for) must not become a flood of synchronous log writes; the next line logged for
 * that key carries `suppressed`, and the counter still sees every event. The key set is bounded: types
 * and reasons are code constants, routes come from the configuration.
 */
export function attachDefaultSubscribers(bus: SecurityEventBus, logger: Logger, now: () => number = Date.now): () => void {
  const c = counter();
  const windows = new Map<string, LogWindow>();
  return bus.subscribe((e) => {
    c.inc({ type: e.type, reason: e.reason, route: e.route });
    const key = `${e.type}\u0000${e.reason}\u0000${e.route}`;
    const t = now();
    let w = windows.get(key);
    if (w === undefined || t - w.start >= SECURITY_LOG_WINDOW_MS) {
      const carried = w?.suppressed ?? 0;
      w = { start: t, logged: 0, suppressed: carried };
      windows.set(key, w);
    }
    if (w.logged >= SECURITY_LOG_BURST) { w.suppressed++; return; }
    w.logged++;
    const suppressed = w.suppressed;
    w.suppressed = 0;
    logger.warn({
      event: 'security',
      type: e.type,
      reason: e.reason,
      route: e.route,
      client_ip: e.clientIp,
      request_id: e.requestId,
      ...(e.consumer !== undefined ? { consumer: e.consumer } : {}),
      ...(e.method !== undefined ? { method: e.method } : {}),
      ...(e.credentialId !== undefined ? { credential_id: e.credentialId } : {}),
      ...(suppressed > 0 ? { suppressed } : {}),
    }, `${e.type} refused: ${e.reason}`);
  });
}
