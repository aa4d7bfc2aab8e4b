// Limits stage: protocol limits per listener (head size, header count, URL length, body size, slow
// clients, connections) and per-route body-size overrides. Unlike other stages most of it cannot be a
// per-request handler: head and timing limits must be enforced by the listener and the header scan
// before a request object is trusted at all (src/server/listener.ts, src/server/handler.ts). This module
// owns the schema, the safe defaults and their resolution.
import type { ListenerLimits } from '../config/schema.js';
import type { ListenerLimitsSchema } from '../config/schema.js';
import type { ListenerLimitsResolved } from '../gateway/runtime.js';


/** Safe protocol defaults for every listener (docs/configuration.md lists them). */
export const DEFAULT_LIMITS: ListenerLimitsResolved = Object.freeze({
  maxHeaderBytes: 16 * 1024,
  maxHeaderCount: 100,
  maxUrlLength: 8 * 1024,
  maxBodyBytes: 10 * 1024 * 1024,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 60_000,
  keepAliveTimeoutMs: 5_000,
  maxConnections: 10_000,
  maxConnectionsPerIp: 512,
  maxRequestsPerConnection: 0,
});

export function resolveLimits(l: ListenerLimits | undefined): ListenerLimitsResolved {
  const out: Record<string, number> = { ...DEFAULT_LIMITS };
  for (const [k, v] of Object.entries(l ?? {})) if (v !== undefined) out[k] = v;
  return out as unknown as ListenerLimitsResolved;
}
