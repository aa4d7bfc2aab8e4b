// WebSocket pass-through: the upgrade request goes through the same checks, routing and stages as any
// request; undici opens the upstream connection with `upgrade: 'websocket'`, and once both sides agree
// the two sockets are spliced together.
import type { Dispatcher } from 'undici';
import type { IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { STATUS_CODES } from 'node:http';
import type { RequestContext, ForwardPlan } from '../pipeline/context.js';
import type { CompiledRoute, GatewayRuntime } from '../gateway/runtime.js';
import { encodePathForUpstream } from '../routing/normalize.js';
import { hashKeyFor } from './forward.js';
import { VERSION_LEAK_HEADERS } from '../net/header-tables.js';

type DispatchController = Parameters<NonNullable<Dispatcher.DispatchHandler['onResponseStart']>>[0];

export function forwardUpgrade(rt: GatewayRuntime, ctx: RequestContext, route: CompiledRoute, plan: ForwardPlan, client: Socket, head: Buffer): void {
  const up = route.upstream!;
  // The access log line and the stages' onDone follow when the client socket closes (src/server/handler.ts).
  const done = (status: number) => {
    ctx.status = status;
    ctx.answered = true;
  };
  const target = up.pick(hashKeyFor(up, ctx), undefined);
  if (target === null) { writeStatus(client, 503); return done(503); }
  const path = route.rewritePath !== undefined ? route.rewritePath(ctx) : ctx.path;
  ctx.upstreamPath = ctx.query === '' ? encodePathForUpstream(path) : `${encodePathForUpstream(path)}?${ctx.query}`;
  const h = plan.fwd;
  h.push('x-forwarded-for', plan.peerTrusted && plan.xff !== undefined ? `${plan.xff}, ${ctx.peerIp}` : ctx.peerIp,
    'x-forwarded-proto', ctx.secure ? 'https' : 'http', 'x-forwarded-host', plan.host, 'via', plan.via === undefined ? rt.via : `${plan.via}, ${rt.via}`, rt.requestId.header, ctx.id,
    'host', route.preserveHost ? plan.host : target.host);
  ctx.upstreamTarget = target.origin;
  ctx.upstreamStart = performance.now();
  ctx.attempts = 1;
  up.begin(target);
  let settled = false;
  const finish = (status: number) => {
    if (settled) return;
    settled = true;
    up.end(target, status > 0 ? { kind: 'response', status } : { kind: 'error', error: 'connect' });
  };
  const handler: Dispatcher.DispatchHandler = {
    onRequestStart() { /* nothing to prepare */ },
    onRequestUpgrade(_c: DispatchController, statusCode: number, headers: IncomingHttpHeaders, upstream: Duplex) {
      finish(statusCode);
      ctx.upstreamEnd = performance.now();
      if (!client.writable) { upstream.destroy(); return done(0); }
      let out = 'HTTP/1.1 101 Switching Protocols\r\n';
      for (const [k, v] of Object.entries(headers)) {
        if (VERSION_LEAK_HEADERS.has(k) || k === 'strict-transport-security' || v === undefined) continue;
        for (const one of Array.isArray(v) ? v : [v]) out += `${k}: ${one}\r\n`;
      }
      out += `${rt.requestId.header}: ${ctx.id}\r\n\r\n`;
      client.write(out);
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
      const close = () => { upstream.destroy(); client.destroy(); };
      upstream.on('error', close);
      client.on('error', close);
      upstream.on('close', close);
      client.on('close', close);
      done(101);
    },
    onResponseStart(c: DispatchController, statusCode: number) {
      // The upstream refused the upgrade: pass its status on (without its body) and close.
      finish(statusCode);
      c.abort(new Error('upgrade refused'));
      writeStatus(client, statusCode >= 500 ? 502 : statusCode);
      done(statusCode);
    },
    onResponseData() { /* ignored */ },
    onResponseEnd() { /* ignored */ },
    onResponseError(_c: DispatchController, err: Error) {
      if (settled) return;
      finish(0);
      rt.logger.warn({ request_id: ctx.id, err: err.message }, 'websocket upgrade to upstream failed');
      writeStatus(client, 502);
      done(502);
    },
  };
  try {
    target.dispatcher.dispatch({ method: 'GET', path: ctx.upstreamPath, headers: h, upgrade: 'websocket' }, handler);
  } catch {
    finish(0);
    writeStatus(client, 400);
    done(400);
  }
}

function writeStatus(socket: Socket, status: number): void {
  if (!socket.writable) { socket.destroy(); return; }
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
}
