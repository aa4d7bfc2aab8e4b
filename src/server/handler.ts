// The per-request entry point: protocol checks, client identity, normalization, routing, the route's
// stage chain, then the proxy (or a direct response). Everything here runs for every request, so it
// reads the compiled runtime and allocates as little as it can: one context, one upstream header array.
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { RequestContext } from '../pipeline/context.js';
import { removeHeaderPairs } from '../pipeline/header-list.js';
import type { Rejection, StageOutcome } from '../pipeline/types.js';
import { normalizeRequestTarget } from '../routing/normalize.js';
import { canonicalIp } from '../net/cidr.js';
import { sendProblem, writeRawProblem, SECURITY_HEADERS, kCondemned, type CondemnableSocket } from './problem.js';
import { forwardRequest } from '../proxy/forward.js';
import { forwardUpgrade } from '../proxy/websocket.js';
import type { CompiledRoute, GatewayRuntime } from '../gateway/runtime.js';
import { Http2ServerRequest } from 'node:http2';
import { http2RequestHeaders } from '../tls/http2.js';
import { answerPlaintext } from '../stages/transport-security/plaintext.js';
import { HSTS_HEADER } from '../stages/transport-security/hsts.js';
import { SHED_DETAIL } from '../stages/concurrency/overload.js';

/** Holds the active configuration generation; swapped on reload. */
export interface RuntimeHolder { current: GatewayRuntime }

const kPeer = Symbol('portcullis.peer');
const kCtx = Symbol('portcullis.ctx');
type PeerSocket = CondemnableSocket & { [kPeer]?: string };
type CtxResponse = ServerResponse & { [kCtx]?: RequestContext };

// Request headers the gateway owns. Clients may not set them (spoofing, routing overrides), or they are
// hop-by-hop (RFC 9110 7.6.1) and must not be forwarded. Value = what the scan does with them.
const enum H { Host = 1, ContentLength, TransferEncoding, Connection, Drop, Xff, Forwarded, Upgrade, Via, Authorization }
const HEADER_KIND = new Map<string, H>([
  ['host', H.Host],
  ['content-length', H.ContentLength],
  ['transfer-encoding', H.TransferEncoding],
  ['connection', H.Connection],
  ['upgrade', H.Upgrade],
  ['authorization', H.Authorization],
  ['keep-alive', H.Drop], ['proxy-connection', H.Drop], ['te', H.Drop], ['trailer', H.Drop],
  ['proxy-authorization', H.Drop], ['proxy-authenticate', H.Drop],
  // `Expect: 100-continue` is answered by Node's server itself; undici refuses to send it.
  ['expect', H.Drop],
  ['x-forwarded-for', H.Xff], ['forwarded', H.Forwarded],
  ['x-forwarded-proto', H.Drop], ['x-forwarded-host', H.Drop], ['x-forwarded-port', H.Drop], ['x-forwarded-prefix', H.Drop],
  // Client-IP headers some backends and frameworks trust: only the gateway may say who the client is.
  ['x-real-ip', H.Drop], ['client-ip', H.Drop], ['true-client-ip', H.Drop], ['x-client-ip', H.Drop],
  ['x-cluster-client-ip', H.Drop], ['cf-connecting-ip', H.Drop], ['fastly-client-ip', H.Drop], ['x-originating-ip', H.Drop],
  ['via', H.Via],
  // Path overrides some frameworks honour: a client could route around the gateway's authorization.
  ['x-original-url', H.Drop], ['x-rewrite-url', H.Drop], ['x-original-uri', H.Drop], ['x-override-url', H.Drop],
  ['x-http-method-override', H.Drop], ['x-http-method', H.Drop], ['x-method-override', H.Drop],
]);

const DIGITS = /^[0-9]{1,15}$/;
const HAS_CTL = /[\x00-\x08\x0a-\x1f\x7f]/;
// Host = uri-host [ ":" port ] (RFC 9110 7.2): IP-literal or reg-name; no userinfo, path, spaces; never empty.
const HOST_VALUE = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]+)(?::[0-9]{0,5})?$/;
const ABSOLUTE_AUTHORITY = /^https?:\/\/([^/?#]*)/i;

export function createRequestHandler(holder: RuntimeHolder, listener: string, secure: boolean) {
  return function handleRequest(req: IncomingMessage, res: ServerResponse): void {
    // Pipelined behind a response that said `connection: close` (e.g. a refused ambiguous request): never
    // answered, never forwarded. Node ends the socket once that response is written, closing this one too.
    // (HTTP/2: req.socket is the whole session's socket and streams are framed independently; never condemned.)
    if ((req.socket as PeerSocket)[kCondemned] === true && !(req instanceof Http2ServerRequest)) return;
    const rt = holder.current;
    const ctx = new RequestContext(req, res, listener, secure, performance.now());
    ctx.runtime = rt;
    (res as CtxResponse)[kCtx] = ctx;
    rt.inflight.count++;
    // HSTS on every response of a TLS listener (problem, direct and proxied: writeHead merges it), value
    // decided at compile time. Never on plain HTTP.
    if (secure) {
      const sts = rt.listeners.get(listener)?.hsts;
      if (sts !== undefined) res.setHeader(HSTS_HEADER, sts);
    }
    // `on`, not `once`: 'close' fires once anyway, and once() allocates a wrapper per request.
    res.on('close', onResponseClose);
    const route = prepare(rt, ctx, req, res, false);
    if (route === undefined) return;
    ctx.route = route;
    runStages(rt, ctx, route, 0);
  };
}

/**
 * Shared by HTTP requests and WebSocket upgrades: checks, identity, normalization, routing.
 * Returns the route, or undefined after answering the client itself.
 */
export function prepare(rt: GatewayRuntime, ctx: RequestContext, req: IncomingMessage, res: ServerResponse | undefined, isUpgrade: boolean): CompiledRoute | undefined {
  const socket = req.socket as PeerSocket;
  let peer = socket[kPeer];
  if (peer === undefined) peer = socket[kPeer] = canonicalIp(socket.remoteAddress ?? '') ?? '0.0.0.0';
  ctx.peerIp = peer;
  const lr = rt.listeners.get(ctx.listener)!;
  const lim = lr.limits;
  let raw = req.rawHeaders;

  // The scan's results live in locals (no per-request object).
  let host: string | undefined, contentLength: string | undefined, te: string | undefined;
  let connection: string | undefined, upgrade: string | undefined, xff: string | undefined;
  let forwarded: string | undefined, via: string | undefined, requestId: string | undefined, bad: string | undefined;
  // HTTP/2 (TLS listeners): pseudo-headers out, `:authority` as Host. A separate branch so the HTTP/1 path
  // pays one comparison (llhttp also reports 2 for an "HTTP/2.0" request line, hence the class check).
  let h2 = false;
  if (req.httpVersionMajor === 2 && req instanceof Http2ServerRequest) {
    h2 = true;
    const h = http2RequestHeaders(raw);
    if (h === undefined) { bad = 'Host and :authority differ'; raw = []; } else raw = h;
  }
  let hostCount = 0, clCount = 0, teCount = 0, authCount = 0;
  const fwd: string[] = [];
  const reqIdHeader = rt.requestId.header;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    // Node's strict parser already refuses CR/LF/NUL; other control bytes would make undici throw later.
    if (HAS_CTL.test(value)) { bad = 'control character in header value'; break; }
    const lower = name.toLowerCase();
    const kind = HEADER_KIND.get(lower);
    if (kind === undefined) {
      if (lower === reqIdHeader) { requestId = value; continue; }
      fwd.push(name, value);
      continue;
    }
    switch (kind) {
      case H.Host: hostCount++; host = value; break;
      case H.ContentLength: clCount++; contentLength = value; break;
      case H.TransferEncoding: teCount++; te = value; break;
      case H.Connection: connection = connection === undefined ? value : `${connection},${value}`; break;
      case H.Upgrade: upgrade = value; break;
      case H.Xff: xff = xff === undefined ? value : `${xff}, ${value}`; break;
      case H.Forwarded: forwarded = forwarded === undefined ? value : `${forwarded}, ${value}`; break;
      case H.Via: via = via === undefined ? value : `${via}, ${value}`; break;
      case H.Authorization: authCount++; fwd.push(name, value); break;
      default: break;
    }
  }

  const peerTrusted = !rt.trusted.empty && rt.trusted.contains(peer);
  ctx.clientIp = peerTrusted ? rt.resolveClientIp(peer, forwarded, xff) : peer;
  ctx.id = rt.requestId.assign(requestId, peerTrusted);


  // --- protocol hardening: never forward an ambiguous request (request smuggling) ---
  if (bad !== undefined) return refuse(ctx, res, socket, reqIdHeader, 400, 'bad-header', bad, true);
  // llhttp accepts any single-digit version (HTTP/0.9, HTTP/2.0 ...) in an HTTP/1 request line.
  if (req.httpVersionMajor !== 1 && !h2) return refuse(ctx, res, socket, reqIdHeader, 505, 'http-version-not-supported', 'only HTTP/1.0 and HTTP/1.1 are supported', true);
  if (raw.length / 2 > lim.maxHeaderCount) return refuse(ctx, res, socket, reqIdHeader, 431, 'too-many-headers', `more than ${lim.maxHeaderCount} header fields`, true);
  const url = req.url ?? '';
  if (url.length > lim.maxUrlLength) return refuse(ctx, res, socket, reqIdHeader, 414, 'uri-too-long', `request target longer than ${lim.maxUrlLength} bytes`, true);
  if (hostCount !== 1) return refuse(ctx, res, socket, reqIdHeader, 400, 'bad-host', hostCount === 0 ? 'missing Host header' : 'duplicate Host header', true);
  if (!HOST_VALUE.test(host!)) return refuse(ctx, res, socket, reqIdHeader, 400, 'bad-host', 'invalid Host header', true);
  // absolute-form: RFC 9112 3.2.2 makes the target's authority win over Host; we route on Host, so they must agree.
  if (url.charCodeAt(0) !== 47 /* / */ && !authorityMatchesHost(url, host!)) return refuse(ctx, res, socket, reqIdHeader, 400, 'bad-host', 'request-target authority differs from Host', true);
  if (teCount > 0) {
    if (clCount > 0) return refuse(ctx, res, socket, reqIdHeader, 400, 'ambiguous-length', 'both Content-Length and Transfer-Encoding', true);
    // RFC 9112 6.1: Transfer-Encoding in an HTTP/1.0 message means the framing is faulty.
    if (req.httpVersionMinor === 0) return refuse(ctx, res, socket, reqIdHeader, 400, 'bad-transfer-encoding', 'Transfer-Encoding in an HTTP/1.0 request', true);
    if (teCount > 1 || te!.toLowerCase() !== 'chunked') return refuse(ctx, res, socket, reqIdHeader, 400, 'bad-transfer-encoding', 'only "Transfer-Encoding: chunked" is accepted', true);
  }
  if (clCount > 1) return refuse(ctx, res, socket, reqIdHeader, 400, 'ambiguous-length', 'duplicate Content-Length', true);
  // A singleton (RFC 9110 11.6.2): Node's req.headers keeps the first copy, which the gateway would
  // verify, while the upstream would receive both and might trust the other.
  if (authCount > 1) return refuse(ctx, res, socket, reqIdHeader, 400, 'bad-header', 'duplicate Authorization header');
  if (clCount === 1 && !DIGITS.test(contentLength!)) return refuse(ctx, res, socket, reqIdHeader, 400, 'bad-content-length', 'invalid Content-Length', true);
  const method = req.method ?? 'GET';
  if (method === 'TRACE' || method === 'TRACK' || method === 'CONNECT') return refuse(ctx, res, socket, reqIdHeader, 405, 'method-not-allowed', `${method} is not allowed`);
  if (upgrade !== undefined && !isUpgrade) {
    // An Upgrade header on a plain request (h2c, or a websocket without Connection: upgrade) is dropped, not forwarded.
    upgrade = undefined;
  }

  const norm = normalizeRequestTarget(url);
  if (!norm.ok) return refuse(ctx, res, socket, reqIdHeader, 400, 'bad-path', norm.reason, true);
  ctx.path = norm.path;
  ctx.query = norm.query;

  // HTTP/2 needs no Content-Length: a body is DATA frames until END_STREAM (forwarded like a chunked one).
  const bodyLen = clCount === 1 ? Number(contentLength) : teCount === 1 ? -1 : h2 && !(req as unknown as Http2ServerRequest).stream.endAfterHeaders ? -1 : 0;
  // Plain-HTTP listener that redirects to https or refuses: answered before routing, no stage, no upstream.
  if (lr.plaintext !== undefined && !ctx.secure) {
    if (res !== undefined) answerPlaintext(lr.plaintext, ctx, res, host!, reqIdHeader, bodyLen !== 0);
    else refuse(ctx, res, socket, reqIdHeader, 403, 'https-required', 'WebSocket connections are only accepted over TLS (wss://)');
    return undefined;
  }
  // --- load shedding (src/stages/concurrency/overload.ts): while the event loop lags, 503 before routing
  // (after the framing checks: a refused ambiguous request must still close its connection).
  const shedder = rt.overload;
  if (shedder !== undefined && shedder.shedding) {
    shedder.shed++;
    ctx.blockReason = 'overloaded';
    ctx.status = 503;
    if (res) sendProblem(res, 503, 'overloaded', SHED_DETAIL, ctx.id, reqIdHeader, shedder.headers);
    else rejectUpgrade(socket, 503, 'overloaded', ctx.id, reqIdHeader, SHED_DETAIL, shedder.headers);
    return undefined;
  }
  // --- end load shedding
  const hit = rt.router.find(ctx.listener, host!, method, norm.path, rt.routerNeedsHeaders ? req.headers : EMPTY_HEADERS);
  if (hit === null) return refuse(ctx, res, socket, reqIdHeader, 404, 'no-route', 'no route matches this request');
  const route = hit.value;
  ctx.routeId = route.id;
  ctx.params = hit.params;
  ctx.wildcard = hit.wildcard;
  const maxBody = route.maxBodyBytes ?? lim.maxBodyBytes;
  if (bodyLen > maxBody) return refuse(ctx, res, socket, reqIdHeader, 413, 'body-too-large', `request body larger than ${maxBody} bytes`, true);
  if (bodyLen > 0) ctx.bytesIn = bodyLen;

  // Hop-by-hop headers named in Connection (RFC 9110 7.6.1) must not travel further either.
  if (connection !== undefined) dropConnectionNominated(fwd, connection);
  // Identity headers only the gateway may send (clientCert.forwardHeader of any route): never a client's copy.
  if (rt.ownedRequestHeaders !== undefined) removeHeaderPairs(fwd, rt.ownedRequestHeaders);

  ctx.plan = { fwd, host: host!, xff, via, peerTrusted, bodyLen, maxBody, upgrade };
  return route;
}


const EMPTY_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

/**
 * Answers a refused request (problem+json, or a raw reply on an upgrade socket). A module function rather
 * than a closure in prepare(): capturing prepare's locals would allocate a context on every request.
 */
function refuse(ctx: RequestContext, res: ServerResponse | undefined, socket: Socket, reqIdHeader: string, status: number, code: string, detail: string, close = false): undefined {
  ctx.blockReason = code;
  ctx.status = status;
  if (res) sendProblem(res, status, code, detail, ctx.id, reqIdHeader, undefined, close);
  else rejectUpgrade(socket, status, code, ctx.id, reqIdHeader, detail);
  return undefined;
}

/** For a target that is not origin-form: true unless it is absolute-form with an authority other than Host. */
function authorityMatchesHost(url: string, host: string): boolean {
  const m = ABSOLUTE_AUTHORITY.exec(url);
  // Not absolute-form (asterisk-form, garbage): normalizeRequestTarget rejects it.
  if (m === null) return true;
  return m[1]!.toLowerCase() === host.toLowerCase();
}

function dropConnectionNominated(fwd: string[], connection: string): void {
  const names = new Set<string>();
  for (const t of connection.split(',')) {
    const n = t.trim().toLowerCase();
    if (n && n !== 'close' && n !== 'keep-alive' && n !== 'upgrade') names.add(n);
  }
  if (names.size === 0) return;
  removeHeaderPairs(fwd, names);
}

/** Runs the route's request stages from index i; stays synchronous until a stage returns a promise. */
function runStages(rt: GatewayRuntime, ctx: RequestContext, route: CompiledRoute, i: number): void {
  const stages = route.onRequest;
  for (; i < stages.length; i++) {
    let out: StageOutcome | Promise<StageOutcome>;
    try {
      out = stages[i]!(ctx);
    } catch (err) {
      return internalError(rt, ctx, err);
    }
    if (out === undefined) {
      // A stage answered the request itself (cache hit): no further stage, nothing proxied.
      if (ctx.answered) return;
      continue;
    }
    if (isPromise(out)) {
      const next = i + 1;
      out.then(
        (o) => { if (o !== undefined) reject(rt, ctx, o); else if (!ctx.res.destroyed && !ctx.answered) runStages(rt, ctx, route, next); },
        (err: unknown) => internalError(rt, ctx, err),
      );
      return;
    }
    return reject(rt, ctx, out);
  }
  dispatch(rt, ctx, route);
}

function isPromise(x: unknown): x is Promise<StageOutcome> {
  return typeof x === 'object' && x !== null && typeof (x as { then?: unknown }).then === 'function';
}

function reject(rt: GatewayRuntime, ctx: RequestContext, o: NonNullable<StageOutcome>): void {
  ctx.blockReason = o.logReason ?? o.code;
  ctx.status = o.status;
  sendProblem(ctx.res, o.status, o.code, o.detail, ctx.id, rt.requestId.header, o.headers, false, o.extensions);
}

function internalError(rt: GatewayRuntime, ctx: RequestContext, err: unknown): void {
  rt.logger.error({ err, request_id: ctx.id, route: ctx.routeId }, 'stage failed');
  ctx.blockReason = 'internal-error';
  ctx.status = 500;
  sendProblem(ctx.res, 500, 'internal-error', undefined, ctx.id, rt.requestId.header, undefined, true);
}

function dispatch(rt: GatewayRuntime, ctx: RequestContext, route: CompiledRoute): void {
  const p = ctx.plan!;
  if (route.respond !== undefined) {
    const d = route.respond;
    const headers: Record<string, string | number> = {
      'content-type': d.contentType,
      'content-length': d.body.length,
      ...SECURITY_HEADERS,
      [rt.requestId.header]: ctx.id,
    };
    ctx.status = d.status;
    ctx.bytesOut = d.body.length;
    // A body we will not read must not linger on a keep-alive connection.
    if (p.bodyLen !== 0) {
      headers.connection = 'close';
      (ctx.req.socket as CondemnableSocket)[kCondemned] = true;
    }
    ctx.res.writeHead(d.status, headers);
    ctx.res.end(ctx.req.method === 'HEAD' ? undefined : d.body);
    return;
  }
  forwardRequest(rt, ctx, route, p);
}

function onResponseClose(this: ServerResponse): void {
  const r = this as CtxResponse;
  const ctx = r[kCtx];
  const rt = ctx?.runtime;
  if (ctx === undefined || rt === undefined) return;
  if (--rt.inflight.count === 0 && rt.inflight.onIdle !== undefined) rt.inflight.onIdle();
  const route = ctx.route;
  if (route !== undefined) {
    for (const done of route.onDone) {
      try { done(ctx); } catch (err) { rt.logger.error({ err }, 'onDone handler failed'); }
    }
  }
  if (ctx.upstream !== undefined && !this.writableFinished) ctx.upstream.abortFromClient();
  rt.accessLog?.log(ctx);
}

function rejectUpgrade(socket: Socket, status: number, code: string, id: string, idHeader: string, detail?: string, extra?: OutgoingHttpHeaders, extensions?: Rejection['extensions']): void {
  if (!socket.writable) { socket.destroy(); return; }
  writeRawProblem(socket, status, code, detail ?? '', id, idHeader, extra, extensions);
}

/** A stage refused an Upgrade request: the same answer as on a plain request (its headers, e.g. Retry-After). */
function refuseUpgrade(rt: GatewayRuntime, ctx: RequestContext, socket: Socket, o: Rejection): void {
  ctx.status = o.status;
  ctx.blockReason = o.logReason ?? o.code;
  rejectUpgrade(socket, o.status, o.code, ctx.id, rt.requestId.header, o.detail, o.headers, o.extensions);
  rt.accessLog?.log(ctx);
}

/** WebSocket (and other Upgrade) requests: same checks and routing; only routes with `websocket: true` pass. */
export function createUpgradeHandler(holder: RuntimeHolder, listener: string, secure: boolean) {
  return function handleUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    // Pipelined behind a `connection: close` answer: no tunnel, nothing forwarded; end() lets that answer flush.
    if ((socket as PeerSocket)[kCondemned] === true) { socket.end(); return; }
    const rt = holder.current;
    const fakeRes = undefined;
    const ctx = new RequestContext(req, fakeRes as unknown as ServerResponse, listener, secure, performance.now());
    const route = prepare(rt, ctx, req, undefined, true);
    if (route === undefined) { rt.accessLog?.log(ctx); return; }
    const upgrade = ctx.plan!.upgrade;
    if (!route.websocket || route.upstream === undefined || upgrade === undefined || upgrade.toLowerCase() !== 'websocket' || req.method !== 'GET') {
      ctx.status = 400;
      ctx.blockReason = 'upgrade-not-allowed';
      rejectUpgrade(socket, 400, 'upgrade-not-allowed', ctx.id, rt.requestId.header, 'this route does not accept this upgrade');
      rt.accessLog?.log(ctx);
      return;
    }
    runUpgradeStages(rt, ctx, route, socket, head, 0);
  };
}

function runUpgradeStages(rt: GatewayRuntime, ctx: RequestContext, route: CompiledRoute, socket: Socket, head: Buffer, i: number): void {
  const stages = route.onRequest;
  for (; i < stages.length; i++) {
    let out: StageOutcome | Promise<StageOutcome>;
    try { out = stages[i]!(ctx); } catch { rejectUpgrade(socket, 500, 'internal-error', ctx.id, rt.requestId.header); return; }
    if (out === undefined) continue;
    if (isPromise(out)) {
      const next = i + 1;
      out.then((o) => {
        if (o !== undefined) refuseUpgrade(rt, ctx, socket, o);
        else runUpgradeStages(rt, ctx, route, socket, head, next);
      }, () => rejectUpgrade(socket, 500, 'internal-error', ctx.id, rt.requestId.header));
      return;
    }
    refuseUpgrade(rt, ctx, socket, out);
    return;
  }
  forwardUpgrade(rt, ctx, route, ctx.plan!, socket, head);
}
