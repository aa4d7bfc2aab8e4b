// The per-request context: everything later stages and the access log need to know about one exchange.
// A class (not an object literal) so every context has the same shape and V8 keeps property access fast.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { CompiledRoute, GatewayRuntime } from '../gateway/runtime.js';
import type { ParsedBody } from '../body/index.js';

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
  /** ms a stage held the request back (rate-limit throttling, `mode: delay`); 0 = not delayed; logged */
  throttleMs = 0;
  /**
   * The decoded request body, read once by the request-body phase on routes where a stage needs it
   * (docs/request-body.md); read-only for stages. undefined on every other route (the body streams).
   */
  body: ParsedBody | undefined = undefined;
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
  /** Strict-Transport-Security value of this request's listener (TLS listeners), added to every response */
  hsts: string | undefined = undefined;
  /** the response head has been committed (by the response writer, src/server/respond.ts): no second answer */
  answered = false;
  /** how the exchange ended when it did not complete: 'client-closed' | 'upstream-reset' | 'upstream-timeout' | … */
  outcome: string | undefined = undefined;
  /** observer of the proxied response (the cache stage stores it); undefined = none, the common case */
  responseTap: ResponseTap | undefined = undefined;

  /** bytes the client sent after an Upgrade request's head (forwarded into the tunnel) */
  upgradeHead: Buffer | undefined = undefined;
  /** stage-private per-request data (see StageSlot); undefined until a stage stores something */
  slots: unknown[] | undefined = undefined;

  constructor(
    readonly req: IncomingMessage,
    /** the HTTP response; undefined for an Upgrade request, which is answered on `upgradeSocket` */
    readonly res: ServerResponse | undefined,
    readonly listener: string,
    readonly secure: boolean,
    start: number,
    /** the raw socket of an Upgrade (WebSocket) request */
    readonly upgradeSocket: Socket | undefined = undefined,
  ) {
    this.start = start;
  }
}

let slotCount = 0;

/**
 * A typed slot for one stage's private per-request data, instead of a new RequestContext field. Create one
 * at module load (`const kState = new StageSlot<MyState>('my-stage')`); each slot owns an index into
 * `ctx.slots`, so reads and writes are an array access and contexts keep one shape.
 */
export class StageSlot<T> {
  readonly index: number;
  constructor(readonly name: string) {
    this.index = slotCount++;
  }
  get(ctx: RequestContext): T | undefined {
    const s = ctx.slots;
    return s === undefined ? undefined : (s[this.index] as T | undefined);
  }
  set(ctx: RequestContext, value: T): void {
    (ctx.slots ??= [])[this.index] = value;
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
  /** the request body when the request-body phase read it (sent upstream instead of streaming) */
  buffered?: Buffer | undefined;
  readonly maxBody: number;
  readonly upgrade: string | undefined;
}

export const EMPTY_PARAMS: Readonly<Record<string, string>> = Object.freeze({});
