// The per-request entry point. It reads like docs/pipeline.md's diagram:
//   1. the phases before routing (src/server/phases.ts: header scan, client IP, request id, framing checks,
//      normalization, plaintext policy, load shedding, routing, body limit),
//   2. the route's steps: its stages' onRequest handlers in order, with the request-body phase in front of
//      the first stage that needs the body (src/pipeline/chain.ts),
//   3. the proxy, a WebSocket tunnel, or a direct answer; every answer goes through the response writer
//      (src/server/respond.ts), which runs the response stages once,
//   4. when the exchange is over (response closed, tunnel closed): the stages' onDone, then the access log.
// Plain requests and Upgrade requests take the same path; only the last step of 3 differs.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Http2ServerRequest } from 'node:http2';
import { RequestContext } from '../pipeline/context.js';
import type { Rejection, StageOutcome } from '../pipeline/types.js';
import { canonicalIp } from '../net/cidr.js';
import { emitOverloadRefusal, emitProtocolRefusal, isProtocolRefusalReason } from '../observability/security-events.js';
import { kCondemned, type CondemnableSocket } from './problem.js';
import { sendDirect, sendProblem, unreadBody, ANSWERED } from './respond.js';
import { PRE_ROUTING_PHASES, RequestHead } from './phases.js';
import { forwardRequest } from '../proxy/forward.js';
import { forwardUpgrade } from '../proxy/websocket.js';
import type { CompiledRoute, GatewayRuntime, RequestStep } from '../gateway/runtime.js';

/** Holds the active configuration generation; swapped on reload. */
export interface RuntimeHolder { current: GatewayRuntime }

const kPeer = Symbol('portcullis.peer');
const kCtx = Symbol('portcullis.ctx');
type PeerSocket = CondemnableSocket & { [kPeer]?: string; [kCtx]?: RequestContext };
type CtxResponse = ServerResponse & { [kCtx]?: RequestContext };

const INTERNAL_ERROR: Rejection = Object.freeze({ status: 500, code: 'internal-error', close: true });
const UPGRADE_NOT_ALLOWED: Rejection = Object.freeze({ status: 400, code: 'upgrade-not-allowed', detail: 'this route does not accept this upgrade' });

export function createRequestHandler(holder: RuntimeHolder, listener: string, secure: boolean) {
  return function handleRequest(req: IncomingMessage, res: ServerResponse): void {
    // Pipelined behind a response that said `connection: close` (e.g. a refused ambiguous request): never
    // answered, never forwarded. Node ends the socket once that response is written, closing this one too.
    // (HTTP/2: req.socket is the whole session's socket and streams are framed independently; never condemned.)
    if ((req.socket as PeerSocket)[kCondemned] === true && !(req instanceof Http2ServerRequest)) return;
    const rt = holder.current;
    const ctx = new RequestContext(req, res, listener, secure, performance.now());
    (res as CtxResponse)[kCtx] = ctx;
    rt.inflight.count++;
    // `on`, not `once`: 'close' fires once anyway, and once() allocates a wrapper per request.
    res.on('close', onResponseClose);
    if (begin(rt, ctx)) runSteps(ctx, ctx.route!.steps, 0);
  };
}

/** WebSocket (and other Upgrade) requests: the same phases and the route's upgrade steps; only `websocket: true` routes tunnel. */
export function createUpgradeHandler(holder: RuntimeHolder, listener: string, secure: boolean) {
  return function handleUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', onUpgradeSocketError);
    // Pipelined behind a `connection: close` answer: no tunnel, nothing forwarded; end() lets that answer flush.
    if ((socket as PeerSocket)[kCondemned] === true) { socket.end(); return; }
    const rt = holder.current;
    const ctx = new RequestContext(req, undefined, listener, secure, performance.now(), socket);
    ctx.upgradeHead = head;
    (socket as PeerSocket)[kCtx] = ctx;
    // Whatever happens next (refusal, tunnel, upstream failure), the exchange ends when this socket closes.
    socket.once('close', onUpgradeSocketClose);
    if (!begin(rt, ctx)) return;
    const route = ctx.route!;
    const upgrade = ctx.plan!.upgrade;
    if (!route.websocket || route.upstream === undefined || upgrade === undefined || upgrade.toLowerCase() !== 'websocket' || req.method !== 'GET') {
      sendProblem(ctx, UPGRADE_NOT_ALLOWED);
      return;
    }
    runSteps(ctx, route.upgradeSteps, 0);
  };
}

/** Runs the phases before routing. True when the request was routed and its steps may run. */
function begin(rt: GatewayRuntime, ctx: RequestContext): boolean {
  ctx.runtime = rt;
  const socket = ctx.req.socket as PeerSocket;
  let peer = socket[kPeer];
  if (peer === undefined) peer = socket[kPeer] = canonicalIp(socket.remoteAddress ?? '') ?? '0.0.0.0';
  ctx.peerIp = peer;
  const lr = rt.listeners.get(ctx.listener)!;
  // HSTS on every response of a TLS listener (decided at compile time), never on plain HTTP.
  if (ctx.secure) ctx.hsts = lr.hsts;
  const head = new RequestHead();
  ctx.plan = head;
  const phases = PRE_ROUTING_PHASES;
  for (let i = 0; i < phases.length; i++) {
    const r = phases[i]!.run(rt, ctx, head, lr);
    if (r === undefined) continue;
    if (r === ANSWERED) return false;
    // Every refusal is a security event (the log line is rate-limited; the metric counts each one).
    if (r.code === 'overloaded') emitOverloadRefusal(rt.events, ctx);
    else if (isProtocolRefusalReason(r.code)) emitProtocolRefusal(rt.events, r.code, ctx);
    // A refusal before the stages: a body we will not read closes the connection.
    sendProblem(ctx, r, r.close === true || unreadBody(ctx));
    return false;
  }
  return true;
}

/** Runs a route's steps from index i; stays synchronous until a step returns a promise. */
function runSteps(ctx: RequestContext, steps: readonly RequestStep[], i: number): void {
  for (; i < steps.length; i++) {
    let out: StageOutcome | Promise<StageOutcome>;
    try {
      out = steps[i]!(ctx);
    } catch (err) {
      return stageFailed(ctx, err);
    }
    if (out === undefined) {
      // A stage answered the request itself (a cache hit): no further step, nothing proxied.
      if (ctx.answered) return;
      continue;
    }
    if (isPromise(out)) {
      const next = i + 1;
      out.then(
        (o) => {
          if (o !== undefined) refuse(ctx, o);
          else if (!ctx.answered && !clientGone(ctx)) runSteps(ctx, steps, next);
        },
        (err: unknown) => stageFailed(ctx, err),
      );
      return;
    }
    return refuse(ctx, out);
  }
  proceed(ctx, ctx.route!);
}

/** A stage's refusal. A body nobody read (stages before the body phase, streaming routes) closes the connection. */
function refuse(ctx: RequestContext, r: Rejection): void {
  sendProblem(ctx, r, r.close === true || unreadBody(ctx));
}

/** After the steps: the tunnel, the proxy, or the route's direct answer. */
function proceed(ctx: RequestContext, route: CompiledRoute): void {
  const rt = ctx.runtime!;
  if (ctx.upgradeSocket !== undefined) return forwardUpgrade(rt, ctx, route, ctx.plan!, ctx.upgradeSocket, ctx.upgradeHead!);
  const d = route.respond;
  if (d !== undefined) return sendDirect(ctx, d.status, d.contentType, d.body);
  forwardRequest(rt, ctx, route, ctx.plan!);
}

function clientGone(ctx: RequestContext): boolean {
  return ctx.upgradeSocket !== undefined ? ctx.upgradeSocket.destroyed : ctx.res!.destroyed;
}

function isPromise(x: unknown): x is Promise<StageOutcome> {
  return typeof x === 'object' && x !== null && typeof (x as { then?: unknown }).then === 'function';
}

function stageFailed(ctx: RequestContext, err: unknown): void {
  ctx.runtime!.logger.error({ err, request_id: ctx.id, route: ctx.routeId, upgrade: ctx.upgradeSocket !== undefined }, 'stage failed');
  sendProblem(ctx, INTERNAL_ERROR);
}

/** The exchange is over: the stages' onDone (each guarded), then the access log line. */
function finishExchange(ctx: RequestContext, done: readonly ((ctx: RequestContext) => void)[] | undefined): void {
  const rt = ctx.runtime;
  if (rt === undefined) return;
  if (done !== undefined) {
    for (let i = 0; i < done.length; i++) {
      try { done[i]!(ctx); } catch (err) { rt.logger.error({ err, request_id: ctx.id, route: ctx.routeId }, 'onDone handler failed'); }
    }
  }
  rt.accessLog?.log(ctx);
}

function onResponseClose(this: ServerResponse): void {
  const ctx = (this as CtxResponse)[kCtx];
  const rt = ctx?.runtime;
  if (ctx === undefined || rt === undefined) return;
  if (!this.writableFinished) {
    ctx.outcome ??= 'client-closed';
    if (ctx.upstream !== undefined) ctx.upstream.abortFromClient();
  }
  finishExchange(ctx, ctx.route?.onDone);
  // Last: a retiring generation may close its access log once idle, and this request has logged by now.
  if (--rt.inflight.count === 0 && rt.inflight.onIdle !== undefined) rt.inflight.onIdle();
}

function onUpgradeSocketClose(this: Socket): void {
  const ctx = (this as PeerSocket)[kCtx];
  if (ctx === undefined) return;
  finishExchange(ctx, ctx.route?.upgradeDone);
}

function onUpgradeSocketError(this: Socket): void {
  this.destroy();
}
