// The named phases every request passes before its route's stages (docs/pipeline.md, "Before routing").
// Each phase reads what earlier ones left on the context and its RequestHead, and returns undefined to go
// on, a Rejection to refuse (answered by the response writer), or ANSWERED when it answered itself (a
// redirect). They run in the order of PRE_ROUTING_PHASES; handler.ts loops over that table.
//
// Everything here runs for every request: one pass over the raw headers, no per-request closures, one
// RequestHead object (which is also the proxy's plan).
import { Http2ServerRequest } from 'node:http2';
import type { RequestContext, ForwardPlan } from '../pipeline/context.js';
import { removeHeaderPairs } from '../pipeline/header-list.js';
import type { Rejection } from '../pipeline/types.js';
import { normalizeRequestTarget } from '../routing/normalize.js';
import { http2RequestHeaders } from '../tls/http2.js';
import type { GatewayRuntime, ListenerRuntime } from '../gateway/runtime.js';
import { answerPlaintext } from './transport-security/plaintext.js';
import { ANSWERED } from './respond.js';
import { SHED_DETAIL } from '../stages/concurrency/overload.js';

export { ANSWERED };
export type PhaseResult = Rejection | typeof ANSWERED | undefined;

export interface Phase {
  readonly name: string;
  run(rt: GatewayRuntime, ctx: RequestContext, head: RequestHead, lr: ListenerRuntime): PhaseResult;
}

/**
 * What the header scan found, then the proxy's plan (ForwardPlan) once routing succeeded. A class so every
 * request's head has one shape.
 */
export class RequestHead implements ForwardPlan {
  /** client headers to forward, flat [name, value, ...]; stages may append (identity headers etc.) */
  fwd: string[] = [];
  host = '';
  xff: string | undefined = undefined;
  via: string | undefined = undefined;
  peerTrusted = false;
  bodyLen = 0;
  maxBody = 0;
  upgrade: string | undefined = undefined;
  buffered: Buffer | undefined = undefined;
  // scan results only the phases read
  raw: string[] = [];
  h2 = false;
  hostCount = 0;
  clCount = 0;
  teCount = 0;
  authCount = 0;
  contentLength: string | undefined = undefined;
  te: string | undefined = undefined;
  connection: string | undefined = undefined;
  forwarded: string | undefined = undefined;
  requestId: string | undefined = undefined;
  /** why the scan refused the head, if it did */
  bad: string | undefined = undefined;
}

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
const EMPTY_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

/** Rejections the phases give; frozen once (the detail of a few depends on limits, built per config). */
function refusal(status: number, code: string, detail: string, close = false): Rejection {
  return Object.freeze({ status, code, detail, close });
}
const CTL_IN_VALUE = refusal(400, 'bad-header', 'control character in header value', true);
const H2_AUTHORITY = refusal(400, 'bad-header', 'Host and :authority differ', true);
const BAD_VERSION = refusal(505, 'http-version-not-supported', 'only HTTP/1.0 and HTTP/1.1 are supported', true);
const NO_HOST = refusal(400, 'bad-host', 'missing Host header', true);
const DUP_HOST = refusal(400, 'bad-host', 'duplicate Host header', true);
const BAD_HOST = refusal(400, 'bad-host', 'invalid Host header', true);
const AUTHORITY_HOST = refusal(400, 'bad-host', 'request-target authority differs from Host', true);
const CL_AND_TE = refusal(400, 'ambiguous-length', 'both Content-Length and Transfer-Encoding', true);
const TE_HTTP10 = refusal(400, 'bad-transfer-encoding', 'Transfer-Encoding in an HTTP/1.0 request', true);
const TE_NOT_CHUNKED = refusal(400, 'bad-transfer-encoding', 'only "Transfer-Encoding: chunked" is accepted', true);
const DUP_CL = refusal(400, 'ambiguous-length', 'duplicate Content-Length', true);
// A singleton (RFC 9110 11.6.2): Node's req.headers keeps the first copy, which the gateway would verify,
// while the upstream would receive both and might trust the other.
const DUP_AUTH = refusal(400, 'bad-header', 'duplicate Authorization header');
const BAD_CL = refusal(400, 'bad-content-length', 'invalid Content-Length', true);
const NO_ROUTE = refusal(404, 'no-route', 'no route matches this request');

/** header-scan: one pass over the raw headers: framing headers counted, gateway-owned ones dropped. */
function scanHeaders(rt: GatewayRuntime, ctx: RequestContext, head: RequestHead): PhaseResult {
  const req = ctx.req;
  let raw = req.rawHeaders;
  // HTTP/2 (TLS listeners): pseudo-headers out, `:authority` as Host. A separate branch so the HTTP/1 path
  // pays one comparison (llhttp also reports 2 for an "HTTP/2.0" request line, hence the class check).
  if (req.httpVersionMajor === 2 && req instanceof Http2ServerRequest) {
    head.h2 = true;
    const h = http2RequestHeaders(raw);
    if (h === undefined) { head.bad = 'h2-authority'; raw = []; } else raw = h;
  }
  head.raw = raw;
  const fwd = head.fwd;
  const reqIdHeader = rt.requestId.header;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    // Node's strict parser already refuses CR/LF/NUL; other control bytes would make undici throw later.
    if (HAS_CTL.test(value)) { head.bad = 'ctl'; break; }
    const lower = name.toLowerCase();
    const kind = HEADER_KIND.get(lower);
    if (kind === undefined) {
      if (lower === reqIdHeader) { head.requestId = value; continue; }
      fwd.push(name, value);
      continue;
    }
    switch (kind) {
      case H.Host: head.hostCount++; head.host = value; break;
      case H.ContentLength: head.clCount++; head.contentLength = value; break;
      case H.TransferEncoding: head.teCount++; head.te = value; break;
      case H.Connection: head.connection = head.connection === undefined ? value : `${head.connection},${value}`; break;
      case H.Upgrade: head.upgrade = value; break;
      case H.Xff: head.xff = head.xff === undefined ? value : `${head.xff}, ${value}`; break;
      case H.Forwarded: head.forwarded = head.forwarded === undefined ? value : `${head.forwarded}, ${value}`; break;
      case H.Via: head.via = head.via === undefined ? value : `${head.via}, ${value}`; break;
      case H.Authorization: head.authCount++; fwd.push(name, value); break;
      default: break;
    }
  }
  return undefined;
}

/** client-ip: the socket peer, or what a trusted proxy says (Forwarded / X-Forwarded-For). */
function resolveClientIp(rt: GatewayRuntime, ctx: RequestContext, head: RequestHead): PhaseResult {
  const peer = ctx.peerIp;
  head.peerTrusted = !rt.trusted.empty && rt.trusted.contains(peer);
  ctx.clientIp = head.peerTrusted ? rt.resolveClientIp(peer, head.forwarded, head.xff) : peer;
  return undefined;
}

/** request-id: generated, or accepted from a trusted proxy; every later answer carries it. */
function assignRequestId(rt: GatewayRuntime, ctx: RequestContext, head: RequestHead): PhaseResult {
  ctx.id = rt.requestId.assign(head.requestId, head.peerTrusted);
  return undefined;
}

/** framing: never forward an ambiguous request (request smuggling); the refusals close the connection. */
function checkFraming(_rt: GatewayRuntime, ctx: RequestContext, head: RequestHead, lr: ListenerRuntime): PhaseResult {
  if (head.bad !== undefined) return head.bad === 'ctl' ? CTL_IN_VALUE : H2_AUTHORITY;
  const req = ctx.req;
  const lim = lr.limits;
  // llhttp accepts any single-digit version (HTTP/0.9, HTTP/2.0 ...) in an HTTP/1 request line.
  if (req.httpVersionMajor !== 1 && !head.h2) return BAD_VERSION;
  if (head.raw.length / 2 > lim.maxHeaderCount) return refusal(431, 'too-many-headers', `more than ${lim.maxHeaderCount} header fields`, true);
  const url = req.url ?? '';
  if (url.length > lim.maxUrlLength) return refusal(414, 'uri-too-long', `request target longer than ${lim.maxUrlLength} bytes`, true);
  if (head.hostCount !== 1) return head.hostCount === 0 ? NO_HOST : DUP_HOST;
  const host = head.host;
  if (!HOST_VALUE.test(host)) return BAD_HOST;
  // absolute-form: RFC 9112 3.2.2 makes the target's authority win over Host; we route on Host, so they must agree.
  if (url.charCodeAt(0) !== 47 /* / */ && !authorityMatchesHost(url, host)) return AUTHORITY_HOST;
  if (head.teCount > 0) {
    if (head.clCount > 0) return CL_AND_TE;
    // RFC 9112 6.1: Transfer-Encoding in an HTTP/1.0 message means the framing is faulty.
    if (req.httpVersionMinor === 0) return TE_HTTP10;
    if (head.teCount > 1 || head.te!.toLowerCase() !== 'chunked') return TE_NOT_CHUNKED;
  }
  if (head.clCount > 1) return DUP_CL;
  if (head.authCount > 1) return DUP_AUTH;
  if (head.clCount === 1 && !DIGITS.test(head.contentLength!)) return BAD_CL;
  const method = req.method ?? 'GET';
  if (method === 'TRACE' || method === 'TRACK' || method === 'CONNECT') return refusal(405, 'method-not-allowed', `${method} is not allowed`);
  // An Upgrade header on a plain request (h2c, or a websocket without Connection: upgrade) is dropped, not forwarded.
  if (head.upgrade !== undefined && ctx.upgradeSocket === undefined) head.upgrade = undefined;
  // HTTP/2 needs no Content-Length: a body is DATA frames until END_STREAM (forwarded like a chunked one).
  head.bodyLen = head.clCount === 1 ? Number(head.contentLength) : head.teCount === 1 ? -1
    : head.h2 && !(req as unknown as Http2ServerRequest).stream.endAfterHeaders ? -1 : 0;
  return undefined;
}

/** normalize: the decoded, dot-segment-free path every later step sees; 400 on ambiguous encodings. */
function normalizeTarget(_rt: GatewayRuntime, ctx: RequestContext): PhaseResult {
  const norm = normalizeRequestTarget(ctx.req.url ?? '');
  if (!norm.ok) return refusal(400, 'bad-path', norm.reason, true);
  ctx.path = norm.path;
  ctx.query = norm.query;
  return undefined;
}

const WSS_ONLY = refusal(403, 'https-required', 'WebSocket connections are only accepted over TLS (wss://)');

/** plaintext: a plain-HTTP listener that redirects to https (308) or refuses, before any stage or upstream. */
function plaintextPolicy(_rt: GatewayRuntime, ctx: RequestContext, head: RequestHead, lr: ListenerRuntime): PhaseResult {
  if (lr.plaintext === undefined || ctx.secure) return undefined;
  if (ctx.upgradeSocket !== undefined) return WSS_ONLY;
  return answerPlaintext(lr.plaintext, ctx, head.host);
}

/** load-shedding: while the event loop lags, 503 before routing (src/stages/concurrency/overload.ts). */
function shedLoad(rt: GatewayRuntime): PhaseResult {
  const shedder = rt.overload;
  if (shedder === undefined || !shedder.shedding) return undefined;
  shedder.shed++;
  return { status: 503, code: 'overloaded', detail: SHED_DETAIL, headers: shedder.headers };
}

/** route: host > path > method > headers precedence (src/routing/router.ts); 404 otherwise. */
function routeRequest(rt: GatewayRuntime, ctx: RequestContext, head: RequestHead): PhaseResult {
  const req = ctx.req;
  const hit = rt.router.find(ctx.listener, head.host, req.method ?? 'GET', ctx.path, rt.routerNeedsHeaders ? req.headers : EMPTY_HEADERS);
  if (hit === null) return NO_ROUTE;
  const route = hit.value;
  ctx.route = route;
  ctx.routeId = route.id;
  ctx.params = hit.params;
  ctx.wildcard = hit.wildcard;
  return undefined;
}

/** body-limit: a declared length over the route's (or listener's) limit is 413 before anything runs. */
function checkBodyLimit(rt: GatewayRuntime, ctx: RequestContext, head: RequestHead, lr: ListenerRuntime): PhaseResult {
  const route = ctx.route!;
  const maxBody = route.maxBodyBytes ?? lr.limits.maxBodyBytes;
  head.maxBody = maxBody;
  if (head.bodyLen > maxBody) return refusal(413, 'body-too-large', `request body larger than ${maxBody} bytes`, true);
  if (head.bodyLen > 0) ctx.bytesIn = head.bodyLen;
  // Hop-by-hop headers named in Connection (RFC 9110 7.6.1) must not travel further either.
  if (head.connection !== undefined) dropConnectionNominated(head.fwd, head.connection);
  // Identity headers only the gateway may send (clientCert.forwardHeader etc. of any route): never a client's copy.
  if (rt.ownedRequestHeaders !== undefined) removeHeaderPairs(head.fwd, rt.ownedRequestHeaders);
  return undefined;
}

/** The phases before a route's stages, in order (docs/pipeline.md). */
export const PRE_ROUTING_PHASES: readonly Phase[] = [
  { name: 'header-scan', run: scanHeaders },
  { name: 'client-ip', run: resolveClientIp },
  { name: 'request-id', run: assignRequestId },
  { name: 'framing', run: checkFraming },
  { name: 'normalize', run: normalizeTarget },
  { name: 'plaintext', run: plaintextPolicy },
  { name: 'load-shedding', run: shedLoad },
  { name: 'route', run: routeRequest },
  { name: 'body-limit', run: checkBodyLimit },
];

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

