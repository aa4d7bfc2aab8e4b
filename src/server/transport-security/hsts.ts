// Strict-Transport-Security (RFC 6797) for TLS listeners. The header value is decided once per listener
// at compile time; the request handler sets it on every response of a TLS listener (proxied, direct and
// problem responses alike), and the proxy drops an upstream's own copy, so the gateway alone decides it.
// Never sent on plain HTTP (browsers ignore it there anyway, RFC 6797 8.1).
import type { ListenerConfig } from '../../config/schema.js';

export const HSTS_HEADER = 'strict-transport-security';
/** One year: the default, and the minimum the browsers' preload lists accept. */
export const HSTS_DEFAULT_MAX_AGE = 31_536_000;

/** The header value for a listener, or undefined when it sends none (plain HTTP, or `hsts: false`). */
export function compileHsts(l: Pick<ListenerConfig, 'tls' | 'hsts'>): string | undefined {
  if (l.tls === undefined || l.hsts === false) return undefined;
  const h = l.hsts ?? {};
  let v = `max-age=${h.maxAge ?? HSTS_DEFAULT_MAX_AGE}`;
  if (h.includeSubDomains ?? true) v += '; includeSubDomains';
  if (h.preload === true) v += '; preload';
  return v;
}
