// The security event bus: every refused authentication, authorization, attestation, DPoP or
// client-certificate check, every protocol/limit/smuggling refusal and load-shed request, every failed
// upstream TLS verification or pin check, and refused admin calls are published here as one structured
// event. Subscribers — the
// security log line and the metrics counter today, alerting and SIEM export later — never see a
// credential: events carry reasons and ids only.
import { Counter, register } from 'prom-client';
import type { Logger } from './logger.js';
import { logThrottle } from './log-throttle.js';

export interface SecurityEvent {
  /**
   * what kind of check failed: 'authentication' | 'authorization' | 'attestation' | 'dpop' |
   * 'client-certificate' | 'upstream-tls' | 'protocol' | 'overload' | 'admin' | ... (see SecurityEventType)
   */
  readonly type: string;
  /** short machine-readable reason, e.g. 'token-expired', 'api-key-revoked', 'insufficient-scope' */
  readonly reason: string;
  /** the route id; '' when the refusal came before routing (protocol, overload) or outside any route */
  readonly route: string;
  /** '' when there is no client request (upstream TLS failures) */
  readonly clientIp: string;
  /** '' when there is no client request */
  readonly requestId: string;
  /** upstream name (upstream-tls events) */
  readonly upstream?: string;
  /** consumer id, when it is known (e.g. a valid key used from a wrong IP) */
  readonly consumer?: string;
  /** authentication method involved ('api-key', 'jwt', 'introspection', ...) */
  readonly method?: string;
  /** API key id or token issuer: never the credential */
  readonly credentialId?: string;
  readonly time: number;
}

export type SecurityEventListener = (e: SecurityEvent) => void;

/** The event types in use. `type` stays a string so stages can add their own. */
export type SecurityEventType =
  | 'authentication' | 'authorization' | 'attestation' | 'dpop' | 'rate-limit'
  | 'client-certificate' | 'upstream-tls' | 'protocol' | 'overload' | 'admin' | 'body';

/**
 * Reasons of `type: 'protocol'` events: requests refused by the request handler before routing or by a
 * listener limit. The names are the problem codes the handler answers with (src/server/handler.ts
 * `refuse(..., code, ...)`), so `code` can be passed through as is when isProtocolRefusalReason(code).
 *   request smuggling / framing   ambiguous-length (CL+TE, duplicate CL), bad-transfer-encoding,
 *                                 bad-content-length
 *   headers and target            bad-header, bad-host, bad-path, uri-too-long, too-many-headers,
 *                                 header-too-large, http-version-not-supported, method-not-allowed
 *   transport / limits            https-required, body-too-large, request-timeout, bad-request (parser error)
 */
export const PROTOCOL_REFUSAL_REASONS = [
  'ambiguous-length', 'bad-transfer-encoding', 'bad-content-length',
  'bad-header', 'bad-host', 'bad-path', 'uri-too-long', 'too-many-headers', 'header-too-large',
  'http-version-not-supported', 'method-not-allowed',
  'https-required', 'body-too-large', 'request-timeout', 'bad-request',
] as const;
export type ProtocolRefusalReason = (typeof PROTOCOL_REFUSAL_REASONS)[number];
const PROTOCOL_REASON_SET: ReadonlySet<string> = new Set(PROTOCOL_REFUSAL_REASONS);

/** True if `code` (a handler problem code) is a protocol refusal reason. 'no-route' is not one. */
export function isProtocolRefusalReason(code: string): code is ProtocolRefusalReason {
  return PROTOCOL_REASON_SET.has(code);
}

/** The request a refusal is about: RequestContext fits as is (`id`, `clientIp`, `routeId`). */
export interface RefusedRequest {
  readonly id: string;
  readonly clientIp: string;
  /** '' before routing */
  readonly routeId: string;
}

/**
 * A protocol, limit or smuggling refusal by the request handler: event { type: 'protocol', reason }.
 * Call it once per refused request, next to the problem answer (the default subscribers count every
 * event and rate-limit the log lines, so a flood of malformed requests stays cheap).
 */
export function emitProtocolRefusal(bus: SecurityEventBus, reason: ProtocolRefusalReason, req: RefusedRequest, now: number = Date.now()): void {
  bus.emit({ type: 'protocol', reason, route: req.routeId, clientIp: req.clientIp, requestId: req.id, time: now });
}

/**
 * Load shedding: a request answered 503 because the process is overloaded: { type: 'overload', reason:
 * 'overloaded' } (the concurrency stage's gates use the same type, with their own reasons).
 */
export function emitOverloadRefusal(bus: SecurityEventBus, req: RefusedRequest, now: number = Date.now()): void {
  bus.emit({ type: 'overload', reason: 'overloaded', route: req.routeId, clientIp: req.clientIp, requestId: req.id, time: now });
}

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

/**
 * The standard subscribers: a Prometheus counter for every event, and a warn-level `security` log line,
 * at most SECURITY_LOG_BURST per (type, reason, route) per 10 s. A flood of refusals (what rate limits
 * and bulkheads exist for) must not become a flood of synchronous log writes; the next line logged for
 * that key carries `suppressed`, and the counter still sees every event. The key set is bounded: types
 * and reasons are code constants, routes come from the configuration.
 */
export function attachDefaultSubscribers(bus: SecurityEventBus, logger: Logger, now: () => number = Date.now): () => void {
  const c = counter();
  const throttle = logThrottle(SECURITY_LOG_BURST, SECURITY_LOG_WINDOW_MS, now);
  return bus.subscribe((e) => {
    c.inc({ type: e.type, reason: e.reason, route: e.route });
    const suppressed = throttle.admit(`${e.type}\u0000${e.reason}\u0000${e.route}`);
    if (suppressed === undefined) return;
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
      ...(e.upstream !== undefined ? { upstream: e.upstream } : {}),
      ...(suppressed > 0 ? { suppressed } : {}),
    }, `${e.type} refused: ${e.reason}`);
  });
}
