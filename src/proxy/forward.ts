// The proxy: one ProxyExchange per request drives undici's dispatch handler API directly. No per-request
// Readable or stream.pipeline (2.4x the CPU on Node 20, see ../shared/research/perf-baseline.md): the client
// request is handed to undici as the body stream, and response chunks are written straight to the client
// with pause/resume backpressure.
import type { Dispatcher } from 'undici';
import type { IncomingHttpHeaders } from 'node:http';
import type { RequestContext, ForwardPlan } from '../pipeline/context.js';
import type { CompiledRoute, GatewayRuntime } from '../gateway/runtime.js';
import type { AttemptOutcome, Upstream, UpstreamTarget } from '../upstream/types.js';
import { encodePathForUpstream } from '../routing/normalize.js';
import { commitHead, sendProblem } from '../server/respond.js';
import { HeaderList, type HeaderValue } from '../pipeline/header-list.js';
import type { Rejection } from '../pipeline/types.js';
import { RESPONSE_DROP_HEADERS } from '../net/header-tables.js';
import { isTlsErrorCode } from '../upstream/tls.js';

type DispatchController = Parameters<NonNullable<Dispatcher.DispatchHandler['onResponseStart']>>[0];

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);

/** Pass: streaming to the client. Discard: the reply is not used. Retry: another attempt follows. Buffer: the response-body phase collects it. */
const enum Mode { Pass, Discard, Retry, Buffer }
const CANCELLED: AttemptOutcome = Object.freeze({ kind: 'cancelled' });

export function forwardRequest(rt: GatewayRuntime, ctx: RequestContext, route: CompiledRoute, plan: ForwardPlan): void {
  const up = route.upstream!;
  const path = route.rewritePath !== undefined ? route.rewritePath(ctx) : ctx.path;
  ctx.upstreamPath = ctx.query === '' ? encodePathForUpstream(path) : `${encodePathForUpstream(path)}?${ctx.query}`;
  const h = plan.fwd;
  h.push(
    'x-forwarded-for', plan.peerTrusted && plan.xff !== undefined ? `${plan.xff}, ${ctx.peerIp}` : ctx.peerIp,
    'x-forwarded-proto', ctx.secure ? 'https' : 'http',
    'x-forwarded-host', plan.host,
    'via', plan.via === undefined ? rt.via : `${plan.via}, ${rt.via}`,
    rt.requestId.header, ctx.id,
  );
  // A body the request-body phase read goes as one buffer with its exact length (a chunked one too).
  const buffered = plan.buffered;
  if (buffered !== undefined) { if (buffered.length > 0) h.push('content-length', String(buffered.length)); }
  else if (plan.bodyLen > 0) h.push('content-length', String(plan.bodyLen));
  // The Host pair goes last so that a retry to another target only rewrites these two slots.
  h.push('host', plan.host);
  const ex = new ProxyExchange(rt, ctx, route, up, plan, h);
  ex.attempt();
}

/** Header names an upstream's Connection header nominates as hop-by-hop (undefined for plain keep-alive/close). */
function connectionNominated(conn: string): Set<string> | undefined {
  if (conn === 'keep-alive' || conn === 'close') return undefined;
  let out: Set<string> | undefined;
  for (const t of conn.split(',')) {
    const n = t.trim().toLowerCase();
    if (n !== '' && n !== 'keep-alive' && n !== 'close') (out ??= new Set()).add(n);
  }
  return out;
}

export function hashKeyFor(up: Upstream, ctx: RequestContext): string | undefined {
  const on = up.hashOn;
  if (on === undefined) return undefined;
  switch (on.kind) {
    case 'clientIp': return ctx.clientIp;
    case 'header': {
      const v = ctx.req.headers[on.name];
      return Array.isArray(v) ? v[0] : v;
    }
    case 'cookie': return cookieValue(ctx.req.headers.cookie, on.name);
  }
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export class ProxyExchange implements Dispatcher.DispatchHandler {
  private target: UpstreamTarget | undefined;
  private controller: DispatchController | undefined;
  private mode = Mode.Pass;
  private status = 0;
  private tried: UpstreamTarget[] | undefined;
  private retriesLeft: number;
  /** performance.now() deadline for the whole exchange (totalMs from arrival), 0 = none */
  private readonly deadline: number;
  private finished = false;
  private drainHooked = false;
  private readonly hashKey: string | undefined;
  private readonly hasBody: boolean;
  private readonly hostIndex: number;
  /** the response-body phase: the head and body held until the body is complete */
  private held: { status: number; flat: HeaderValue[]; message: string | undefined; chunks: Buffer[]; size: number } | undefined;

  constructor(
    private readonly rt: GatewayRuntime,
    private readonly ctx: RequestContext,
    private readonly route: CompiledRoute,
    private readonly up: Upstream,
    private readonly plan: ForwardPlan,
    private readonly headers: string[],
  ) {
    this.hasBody = plan.buffered !== undefined ? plan.buffered.length > 0 : plan.bodyLen !== 0;
    // Only requests we can replay exactly are retried: idempotent, and no body stream already consumed.
    this.retriesLeft = !this.hasBody && IDEMPOTENT.has(ctx.req.method ?? '') ? up.retry.attempts : 0;
    this.hashKey = hashKeyFor(up, ctx);
    this.hostIndex = headers.length - 1;
    ctx.upstream = this;
    // The total budget needs no timer of its own: the pool's head and idle-body timeouts are capped at
    // totalMs (src/upstream/upstream.ts), so a silent upstream is cut by undici, and a trickling one is
    // cut here at its next chunk. (A per-request timer, Set or list entry measurably raised GC work.)
    const total = up.timeouts.totalMs;
    this.deadline = total > 0 ? ctx.start + total : 0;
    if (plan.bodyLen === -1 && plan.buffered === undefined) this.limitChunkedBody();
  }

  attempt(): void {
    const ctx = this.ctx;
    const target = this.up.pick(this.hashKey, this.tried);
    if (target === null) return this.fail(503, 'upstream-unavailable', 'no healthy upstream target is available');
    this.target = target;
    this.mode = Mode.Pass;
    this.status = 0;
    this.up.begin(target);
    if (ctx.attempts++ === 0) ctx.upstreamStart = performance.now();
    ctx.upstreamTarget = target.origin;
    if (!this.route.preserveHost) this.headers[this.hostIndex] = target.host;
    try {
      target.dispatcher.dispatch({
        method: ctx.req.method ?? 'GET',
        path: ctx.upstreamPath,
        headers: this.headers,
        body: this.hasBody ? (this.plan.buffered ?? ctx.req) : null,
      }, this);
    } catch (err) {
      // undici validates headers when it builds the request: a value Node's parser let through but undici
      // refuses must become a 400 here, never an exception that takes the worker down.
      const e = err as { code?: string };
      this.up.end(target, e.code === 'UND_ERR_INVALID_ARG' ? CANCELLED : { kind: 'error', error: 'other' });
      this.settle();
      if (e.code === 'UND_ERR_INVALID_ARG') return this.fail(400, 'bad-request', 'the request cannot be forwarded');
      this.rt.logger.error({ err, request_id: ctx.id }, 'dispatch failed');
      return this.fail(502, 'upstream-error', 'the upstream request could not be sent');
    }
  }

  onRequestStart(controller: DispatchController): void {
    this.controller = controller;
    if (this.ctx.res!.destroyed) controller.abort(new Error('client closed the connection'));
  }

  onResponseStart(controller: DispatchController, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    this.status = statusCode;
    const ctx = this.ctx;
    if (this.retriesLeft > 0 && this.up.retry.retryOnStatus.has(statusCode) && this.up.retry.tryAcquireRetry()) {
      this.retriesLeft--;
      this.mode = Mode.Retry;
      return;
    }
    ctx.upstreamEnd = performance.now();
    ctx.status = statusCode;
    if (statusCode >= 500 && !this.route.exposeUpstreamErrors) {
      // Upstream error bodies carry stack traces and internals: the client gets a problem document instead.
      this.mode = Mode.Discard;
      sendProblem(ctx, { status: statusCode, code: 'upstream-error', detail: 'the upstream service failed' });
      ctx.blockReason = undefined;
      return;
    }
    const h = headers as Record<string, string | string[] | number | undefined>;
    const conn = h.connection;
    const nominated = typeof conn === 'string' ? connectionNominated(conn) : undefined;
    const idHeader = this.rt.requestId.header;
    // One pass into a flat [name, value, ...] list, which writeHead takes as is: no `delete` (it turns the
    // object into a slow dictionary) and no for-in inside Node. Response stages edit the same list.
    const flat: HeaderValue[] = [];
    for (const k in h) {
      if (RESPONSE_DROP_HEADERS.has(k) || k === idHeader || (nominated !== undefined && nominated.has(k))) continue;
      const v = h[k];
      if (v !== undefined) flat.push(k, v);
    }
    // Response tap (the cache stage): sees the upstream head before the gateway's own headers. One check when unset.
    if (ctx.responseTap !== undefined) ctx.responseTap.onHead(statusCode, flat);
    flat.push('via', this.rt.via);
    if (this.route.onResponseBody.length > 0) {
      // The response-body phase: nothing is sent until the whole body is here and its stages have seen it.
      this.mode = Mode.Buffer;
      this.held = { status: statusCode, flat, message: statusMessage || undefined, chunks: [], size: 0 };
      return;
    }
    if (!commitHead(ctx, statusCode, flat, false, statusMessage)) {
      this.mode = Mode.Discard;
      // The client left before the head (an HTTP/2 stream reset can land here before the response's
      // 'close' handler runs): not the target's fault, so no strike for passive health or the breaker.
      if (ctx.res!.destroyed) controller.abort(new Error('client closed the connection'));
      // e.g. a header value Node refuses to write: the upstream reply is unusable.
      else controller.abort(new Error('invalid upstream response head'));
    }
  }

  onResponseData(controller: DispatchController, chunk: Buffer): void {
    if (this.mode === Mode.Buffer) return this.hold(controller, chunk);
    if (this.mode !== Mode.Pass) return;
    if (this.deadline !== 0 && performance.now() > this.deadline) {
      this.abort(new TotalTimeoutError());
      return;
    }
    const res = this.ctx.res!;
    this.ctx.bytesOut += chunk.length;
    if (this.ctx.responseTap !== undefined) this.ctx.responseTap.onData(chunk);
    if (!res.write(chunk)) {
      // A closed HTTP/2 stream refuses the write and sends no 'drain': pausing would hold the upstream
      // connection until a timeout. (Checked only on a refused write.)
      if (res.destroyed) return this.abortFromClient();
      controller.pause();
      // Hooked on first backpressure only: most responses fit the socket buffer and never need it.
      if (!this.drainHooked) {
        this.drainHooked = true;
        res.on('drain', () => controller.resume());
      }
    }
  }

  onResponseEnd(): void {
    this.up.end(this.target!, { kind: 'response', status: this.status });
    if (this.mode === Mode.Retry) return this.retry();
    this.settle();
    if (this.mode === Mode.Buffer) return this.release();
    if (this.mode === Mode.Pass) {
      if (this.ctx.responseTap !== undefined) this.ctx.responseTap.onEnd();
      this.ctx.res!.end();
    }
  }

  /** Response-body phase: collects a chunk, or gives up at the route's limit (502, or pass the response on). */
  private hold(controller: DispatchController, chunk: Buffer): void {
    const held = this.held!;
    held.size += chunk.length;
    if (held.size <= this.route.responseBody.maxBytes) { held.chunks.push(chunk); return; }
    if (this.route.responseBody.overflow === 'pass') {
      // Too large to inspect: sent as it is, without the response-body stages (documented trade-off).
      this.held = undefined;
      this.mode = Mode.Pass;
      if (!commitHead(this.ctx, held.status, held.flat, false, held.message)) { this.mode = Mode.Discard; controller.abort(new Error('invalid upstream response head')); return; }
      for (const c of held.chunks) this.onResponseData(controller, c);
      this.onResponseData(controller, chunk);
      return;
    }
    this.held = undefined;
    this.mode = Mode.Discard;
    this.ctx.outcome = 'response-too-large';
    controller.abort(new ResponseTooLargeError());
  }

  /** Response-body phase: the whole body is here; its stages run (reverse order), then it is sent at once. */
  private release(): void {
    const ctx = this.ctx;
    const held = this.held!;
    this.held = undefined;
    let body = held.chunks.length === 1 ? held.chunks[0]! : Buffer.concat(held.chunks, held.size);
    const list = new HeaderList(held.flat);
    const stages = this.route.onResponseBody;
    for (let i = stages.length - 1; i >= 0; i--) {
      let out: Buffer | Rejection;
      try {
        out = stages[i]!(ctx, held.status, list, body);
      } catch (err) {
        this.rt.logger.error({ err, request_id: ctx.id, route: ctx.routeId }, 'response-body stage failed');
        out = { status: 502, code: 'upstream-error', detail: 'the upstream response could not be processed' };
      }
      if (!Buffer.isBuffer(out)) { sendProblem(ctx, out); return; }
      body = out;
    }
    // The body may have changed: its length is the gateway's to state (no chunked framing from upstream).
    // A HEAD reply has no body to measure, and the upstream's length may no longer hold once a stage
    // rewrites the body: it goes without one (RFC 9110 8.6 allows that).
    list.remove('content-length');
    const head = ctx.req.method === 'HEAD';
    if (!head && held.status !== 204 && held.status !== 304) list.append('content-length', body.length);
    if (ctx.responseTap !== undefined) ctx.responseTap.onData(body);
    if (!commitHead(ctx, held.status, list.items, false, held.message)) return;
    ctx.bytesOut = head ? 0 : body.length;
    if (ctx.responseTap !== undefined) ctx.responseTap.onEnd();
    ctx.res!.end(head ? undefined : body);
  }

  onResponseError(_controller: DispatchController, err: Error): void {
    const kind = classify(err);
    // No outcome = not the target's fault (client went away, client body too large or malformed): only
    // in-flight accounting, never a strike for passive health or the breaker.
    if (this.target !== undefined) this.up.end(this.target, kind.outcome ?? CANCELLED);
    const ctx = this.ctx;
    const res = ctx.res!;
    if (this.finished || res.destroyed) return this.settle();
    if (kind.retryable && this.mode !== Mode.Discard && !ctx.answered && this.retriesLeft > 0 && this.up.retry.tryAcquireRetry()) {
      this.retriesLeft--;
      return this.retry();
    }
    this.settle();
    if (this.mode === Mode.Discard && ctx.answered) return;
    if (kind.status === 0) return;
    if (ctx.answered) ctx.outcome = kind.code;
    if (kind.status >= 500) this.rt.logger.warn({ request_id: ctx.id, upstream: this.target?.origin, code: (err as { code?: string }).code, error: err.message }, 'upstream exchange failed');
    this.fail(kind.status, kind.code, kind.detail);
  }

  /** The client went away: stop the upstream exchange too. */
  abortFromClient(): void {
    this.abort(new Error('client closed the connection'));
  }

  private retry(): void {
    (this.tried ??= []).push(this.target!);
    this.attempt();
  }

  private abort(reason: Error): void {
    if (this.controller !== undefined && !this.controller.aborted) this.controller.abort(reason);
    else if (reason instanceof TotalTimeoutError && !this.finished) { this.settle(); this.fail(504, 'upstream-timeout', 'the upstream service did not answer in time'); }
  }

  private settle(): void {
    this.finished = true;
    this.ctx.upstream = undefined;
  }

  private fail(status: number, code: string, detail: string): void {
    const ctx = this.ctx;
    this.settle();
    if (ctx.answered) {
      // The response is under way: cut it, so the client sees a broken response, never a truncated success.
      ctx.outcome ??= code;
      ctx.blockReason = code;
      ctx.res!.destroy();
      return;
    }
    // A streamed request body may be partly unread: close. A buffered one was read whole.
    sendProblem(ctx, { status, code, detail, ...(status === 503 ? { headers: RETRY_AFTER_1 } : {}) }, this.hasBody && this.plan.buffered === undefined);
  }

  /** A chunked body has no length up front: count it as it streams and cut it at the limit. */
  private limitChunkedBody(): void {
    const ctx = this.ctx;
    const max = this.plan.maxBody;
    const req = ctx.req;
    const onData = (chunk: Buffer) => {
      ctx.bytesIn += chunk.length;
      if (ctx.bytesIn > max) {
        req.off('data', onData);
        ctx.blockReason = 'body-too-large';
        if (this.controller !== undefined && !this.controller.aborted) this.controller.abort(new BodyLimitError());
        else this.fail(413, 'body-too-large', `request body larger than ${max} bytes`);
      }
    };
    // A 'data' listener alone would start the flow now, before undici attaches its own when the upstream
    // connection is ready: those chunks would be lost (a silently truncated body). Paused, adding listeners
    // does not resume; undici resumes once it is listening too.
    req.pause();
    req.on('data', onData);
  }
}

const RETRY_AFTER_1 = Object.freeze({ 'retry-after': '1' });

class TotalTimeoutError extends Error { readonly code = 'PORTCULLIS_TOTAL_TIMEOUT'; }
class ResponseTooLargeError extends Error { readonly code = 'PORTCULLIS_RESPONSE_TOO_LARGE'; }
class BodyLimitError extends Error { readonly code = 'PORTCULLIS_BODY_LIMIT'; }

interface Classified { status: number; code: string; detail: string; retryable: boolean; outcome: AttemptOutcome | undefined }

function classify(err: Error): Classified {
  const code = (err as { code?: string }).code ?? '';
  switch (code) {
    case 'PORTCULLIS_BODY_LIMIT': return { status: 413, code: 'body-too-large', detail: 'request body too large', retryable: false, outcome: undefined };
    case 'PORTCULLIS_RESPONSE_TOO_LARGE': return { status: 502, code: 'upstream-response-too-large', detail: 'the upstream response is larger than this route accepts', retryable: false, outcome: { kind: 'response', status: 200 } };
    case 'PORTCULLIS_TOTAL_TIMEOUT': return { status: 504, code: 'upstream-timeout', detail: 'the upstream service did not answer in time', retryable: false, outcome: { kind: 'error', error: 'timeout' } };
    case 'UND_ERR_CONNECT_TIMEOUT': return { status: 504, code: 'upstream-timeout', detail: 'the upstream service could not be reached in time', retryable: true, outcome: { kind: 'error', error: 'connect' } };
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT': return { status: 504, code: 'upstream-timeout', detail: 'the upstream service did not answer in time', retryable: false, outcome: { kind: 'error', error: 'timeout' } };
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH': return { status: 502, code: 'upstream-unreachable', detail: 'the upstream service could not be reached', retryable: true, outcome: { kind: 'error', error: 'connect' } };
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
    case 'UND_ERR_CLOSED': return { status: 502, code: 'upstream-error', detail: 'the upstream connection failed', retryable: true, outcome: { kind: 'error', error: 'reset' } };
    case 'UND_ERR_INVALID_ARG':
    case 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH': return { status: 400, code: 'bad-request', detail: 'the request cannot be forwarded', retryable: false, outcome: undefined };
    case 'UND_ERR_ABORTED':
    case 'ABORT_ERR': return { status: 0, code: 'aborted', detail: '', retryable: false, outcome: undefined };
    default:
      if (err.message === 'client closed the connection') return { status: 0, code: 'aborted', detail: '', retryable: false, outcome: undefined };
      // Unverifiable or unpinned certificate, refused client certificate, protocol mismatch: a connect
      // failure of this target (counts for passive health; another target may be fine). Never any
      // certificate detail for the client: the log has the code and message.
      if (isTlsErrorCode(code)) return { status: 502, code: 'upstream-tls-error', detail: 'a secure connection to the upstream service could not be established', retryable: true, outcome: { kind: 'error', error: 'connect' } };
      return { status: 502, code: 'upstream-error', detail: 'the upstream response was invalid', retryable: false, outcome: { kind: 'error', error: 'other' } };
  }
}
