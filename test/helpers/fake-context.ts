// A RequestContext without a server, for unit tests of stage handlers.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { RequestContext } from '../../src/pipeline/context.js';

export function fakeContext(opts: { method?: string; url?: string; headers?: Record<string, string>; clientIp?: string; host?: string; secure?: boolean; routeId?: string } = {}): RequestContext {
  const headers: Record<string, string> = {};
  const rawHeaders: string[] = [];
  for (const [k, v] of Object.entries(opts.headers ?? {})) { headers[k.toLowerCase()] = v; rawHeaders.push(k, v); }
  const url = opts.url ?? '/';
  const req = { method: opts.method ?? 'GET', url, headers, rawHeaders, socket: {} } as unknown as IncomingMessage;
  const ctx = new RequestContext(req, {} as ServerResponse, 'main', opts.secure ?? false, 0);
  ctx.id = 'req-1';
  ctx.clientIp = opts.clientIp ?? '127.0.0.1';
  ctx.routeId = opts.routeId ?? 'r';
  const q = url.indexOf('?');
  ctx.path = q < 0 ? url : url.slice(0, q);
  ctx.query = q < 0 ? '' : url.slice(q + 1);
  ctx.plan = { fwd: [...rawHeaders], host: opts.host ?? 'api.example', xff: undefined, via: undefined, peerTrusted: false, bodyLen: 0, maxBody: 0, upgrade: undefined };
  return ctx;
}
