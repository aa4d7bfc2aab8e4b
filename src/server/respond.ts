// The response writer: every answer to a request that has a context goes through here: proxied responses,
// cache hits, `respond` routes, redirects and problem documents, on plain requests and on Upgrade requests.
// It runs the route's response stages exactly once, adds the headers every response carries, and owns the
// connection rule (when an answer must close the connection). src/server/problem.ts keeps the low-level
// formatting for answers given before a request exists (parser errors).
import type { OutgoingHttpHeaders } from 'node:http';
import type { RequestContext } from '../pipeline/context.js';
import { HeaderList, type HeaderValue } from '../pipeline/header-list.js';
import type { Rejection } from '../pipeline/types.js';
import { problemBody, writeRawProblem, kCondemned, type CondemnableSocket } from './problem.js';

/** A phase or stage answered the request itself (a redirect, a cache hit), not a refusal: stop, send nothing more. */
export const ANSWERED = Symbol('portcullis.answered');

/** What every gateway-generated body carries (a proxied response keeps the upstream's caching headers). */
const NO_STORE = 'no-store';

/**
 * Does this request have a body the gateway will not read? Then an answer that is not the upstream's must
 * close the connection: leftover body bytes must never be parsed as the next request.
 */
export function unreadBody(ctx: RequestContext): boolean {
  const p = ctx.plan;
  return p !== undefined && p.bodyLen !== 0 && p.buffered === undefined;
}

/**
 * Commits the response head: response stages (reverse order, once), the gateway's own headers, the
 * connection rule. Returns false when the response was already committed or cannot be written (the caller
 * must not write a body then). `flat` is edited in place.
 */
export function commitHead(ctx: RequestContext, status: number, flat: HeaderValue[], close: boolean, statusMessage?: string): boolean {
  const res = ctx.res;
  if (res === undefined || ctx.answered || res.headersSent || res.destroyed) return false;
  ctx.answered = true;
  ctx.status = status;
  const rt = ctx.runtime!;
  // The gateway's own headers go in first: response stages see them (and a stage that sets one replaces it).
  flat.push('x-content-type-options', 'nosniff', rt.requestId.header, ctx.id);
  const stages = ctx.route?.onResponse;
  if (stages !== undefined && stages.length > 0) {
    const list = new HeaderList(flat);
    for (let i = stages.length - 1; i >= 0; i--) {
      try {
        stages[i]!(ctx, status, list);
      } catch (err) {
        ctx.runtime?.logger.error({ err, request_id: ctx.id, route: ctx.routeId }, 'response stage failed');
      }
    }
  }
  if (ctx.hsts !== undefined) flat.push('strict-transport-security', ctx.hsts);
  if (close) {
    flat.push('connection', 'close');
    (ctx.req.socket as CondemnableSocket | null)![kCondemned] = true;
  }
  try {
    if (statusMessage) res.writeHead(status, statusMessage, flat as unknown as OutgoingHttpHeaders);
    else res.writeHead(status, flat as unknown as OutgoingHttpHeaders);
  } catch (err) {
    // e.g. a header value Node refuses to write (an upstream's, or one a stage built from client input)
    ctx.runtime?.logger.warn({ err, request_id: ctx.id, route: ctx.routeId }, 'response head could not be written');
    ctx.status = 502;
    res.destroy();
    return false;
  }
  return true;
}

/** A complete response with a body the gateway holds (direct answers, cache hits, problems). */
export function sendBody(ctx: RequestContext, status: number, flat: HeaderValue[], body: Buffer | string, close: boolean): void {
  const length = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
  if (status !== 204 && status !== 304) flat.push('content-length', length);
  if (!commitHead(ctx, status, flat, close)) return;
  const head = ctx.req.method === 'HEAD';
  ctx.bytesOut = head ? 0 : length;
  ctx.res!.end(head ? undefined : body);
}

/**
 * Answers with an RFC 9457 problem document (a Rejection): on a plain request through commitHead, on an
 * Upgrade request as a raw response on its socket. Records the status and block reason for the access log.
 */
export function sendProblem(ctx: RequestContext, r: Rejection, close = r.close === true): void {
  ctx.blockReason = r.logReason ?? r.code;
  ctx.status = r.status;
  const rt = ctx.runtime!;
  const socket = ctx.upgradeSocket;
  if (socket !== undefined) {
    ctx.answered = true;
    if (!socket.writable) { socket.destroy(); return; }
    writeRawProblem(socket, r.status, r.code, r.detail ?? '', ctx.id, rt.requestId.header, r.headers, r.extensions);
    return;
  }
  const res = ctx.res!;
  if (ctx.answered || res.headersSent) {
    // Too late for a clean answer: cut the connection so the client sees a broken response, never a
    // truncated "success".
    res.destroy();
    return;
  }
  const body = problemBody(r.status, r.code, r.detail, ctx.id, r.extensions);
  const flat: HeaderValue[] = [];
  const extra = r.headers;
  if (extra !== undefined) {
    for (const name in extra) {
      const v = extra[name];
      if (v !== undefined) flat.push(name, v);
    }
  }
  flat.push('content-type', 'application/problem+json', 'cache-control', NO_STORE);
  sendBody(ctx, r.status, flat, body, close);
}

/** A response the gateway makes up itself (a `respond` route, a redirect): never cached by the client's intermediaries. */
export function sendDirect(ctx: RequestContext, status: number, contentType: string | undefined, body: Buffer | string, extra?: readonly HeaderValue[]): void {
  const flat: HeaderValue[] = extra === undefined ? [] : extra.slice();
  if (contentType !== undefined) flat.push('content-type', contentType);
  flat.push('cache-control', NO_STORE);
  sendBody(ctx, status, flat, body, unreadBody(ctx));
}
