// The per-request context: everything later stages and the access log need to know about one exchange.
// A class (not an object literal) so every context has the same shape and V8 keeps property access fast.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CompiledRoute, GatewayRuntime } from '../gateway/runtime.js';

// The verified identity lives with the verifiers (src/identity/identity.ts); re-exported for stages.
export type { Identity } from '../identity/identity.js';
import type { Identity } from '../identity/identity.js';

export class RequestContext {
  /** request id: generated, or accepted from a trusted proxy */
  id = '';
  /** client IP as derived by the client-ip stage (socket peer unless a trusted proxy vouches) */
  clientIp = '';
  /** socket peer address (canonical) */
  peerIp = '';
  /** normalized, decoded path used for routing and every stage */
  path = '';
  /** raw query string without '?' ('' if none) */
  query = '';
  /** path sent upstream, canonically re-encoded (set by the router / rewrite step) */
  upstreamPath = '';
  routeId = '';
  /** the configuration generation this request runs on (kept even if a reload swaps in a new one) */
  runtime: GatewayRuntime | undefined = undefined;
  /** the compiled route, once routing succeeded */
  route: CompiledRoute | undefined = undefined;
  params: Readonly<Record<string, string>> = EMPTY_PARAMS;
  wildcard: string | undefined = undefined;
  identity: Identity | undefined = undefined;
  /** the RateLimit response header value, when the rate-limit stage admitted the request and headers are on */
  rateLimit: string | undefined = undefined;
  /** RateLimit-Policy of the limits that decided (set with rateLimit) */
  rateLimitPolicy: string | undefined = undefined;
  /** ms the rate-limit stage held the request back (throttling, `mode: delay`); 0 = not delayed */
  throttleMs = 0;
  /** set when a stage or the gateway rejects the request; reported in the access log */
  blockReason: string | undefined = undefined;
  status = 0;
  bytesIn = 0;
  bytesOut = 0;
  /** performance.now() at arrival */
  readonly start: number;
  upstreamStart = 0;
  upstreamEnd = 0;
  upstreamTarget = '';
  attempts = 0;
  /** what the header scan prepared for the proxy (set once routing succeeded) */
  plan: ForwardPlan | undefined = undefined;
  /**
   * The open upstream exchange, if any; told when the client goes away. An object, not a closure: a
   * closure per request capturing the exchange was measured to make V8 keep (promote) per-request
   * state across scavenges, tripling GC time under load.
   */
  upstream: { abortFromClient(): void } | undefined = undefined;
  /** set by a stage that answered the request itself (a cache hit): the handler stops, nothing is proxied */
  answered = false;
  /** observer of the proxied response (the cache stage stores it); undefined = none, the common case */
  responseTap: ResponseTap | undefined = undefined;

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly listener: string,
    readonly secure: boolean,
    start: number,
  ) {
    this.start = start;
  }
}

/**
 * Sees the proxied response as the proxy sends it (src/proxy/forward.ts): the upstream head once the
 * gateway dropped hop-by-hop and internal headers (before response stages add theirs), each body chunk,
 * and the end of a complete body. Not called for a response the proxy replaces (5xx problem) or cuts.
 */
export interface ResponseTap {
  onHead(status: number, headers: readonly (string | string[] | number)[]): void;
  onData(chunk: Buffer): void;
  onEnd(): void;
}

/** Request data gathered by the header scan, consumed by the proxy. */
export interface ForwardPlan {
  /** client headers to forward, flat [name, value, ...]; stages may append (identity headers etc.) */
  readonly fwd: string[];
  readonly host: string;
  readonly xff: string | undefined;
  /** the request's Via chain; the gateway appends its own hop (RFC 9110 7.6.3) */
  readonly via: string | undefined;
  readonly peerTrusted: boolean;
  /** -1 = chunked (length unknown), 0 = no body, else Content-Length */
  readonly bodyLen: number;
  readonly maxBody: number;
  readonly upgrade: string | undefined;
}

export const EMPTY_PARAMS: Readonly<Record<string, string>> = Object.freeze({});
