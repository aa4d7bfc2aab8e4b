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

/** The standard subscribers: one warn-level `security` log line and a Prometheus counter per event. */
export function attachDefaultSubscribers(bus: SecurityEventBus, logger: Logger): () => void {
  const c = counter();
  return bus.subscribe((e) => {
    c.inc({ type: e.type, reason: e.reason, route: e.route });
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
    }, `${e.type} refused: ${e.reason}`);
  });
}
