// The request-body phase (docs/request-body.md). On a route where some stage needs the request body, this
// step runs right before that stage: it reads the body once, up to the route's limit (413 beyond, and the
// connection closes: the rest is never read), decodes it by Content-Type (src/body) and gives stages one
// read-only view on `ctx.body`. The upstream then receives the exact bytes read (`plan.buffered`). Routes
// without such a stage never get here: their bodies stream to the upstream unbuffered.
import type { RequestContext } from '../pipeline/context.js';
import type { Rejection, StageOutcome } from '../pipeline/types.js';
import type { RequestStep } from '../gateway/runtime.js';
import { decodeBody, isBodyError, type BodyError, type BodyLimits, type ParsedBody } from '../body/index.js';

const EMPTY = Buffer.alloc(0);
const CLIENT_CLOSED: Rejection = Object.freeze({ status: 400, code: 'client-closed', detail: 'the request body ended early', close: true });

/** One reader per route, over that route's decoding limits. */
export function createBodyReader(limits: BodyLimits): RequestStep {
  return (ctx) => {
    const plan = ctx.plan!;
    if (plan.bodyLen === 0) return decoded(ctx, EMPTY, limits);
    return readBody(ctx, plan.maxBody).then((raw) => (Buffer.isBuffer(raw) ? decoded(ctx, raw, limits) : raw === CLIENT_CLOSED ? raw : refused(ctx, raw)));
  };
}

function decoded(ctx: RequestContext, raw: Buffer, limits: BodyLimits): StageOutcome | Promise<StageOutcome> {
  ctx.plan!.buffered = raw;
  ctx.bytesIn = raw.length;
  const r = decodeBody(raw, headerValue(ctx.req.headers['content-type']), limits);
  if (r instanceof Promise) return r.then((x) => settle(ctx, x));
  return settle(ctx, r);
}

function settle(ctx: RequestContext, r: ParsedBody | BodyError): StageOutcome {
  if (isBodyError(r)) return refused(ctx, bodyRejection(r));
  ctx.body = r;
  return undefined;
}

/** Every refused body is a security event: { type: 'body', reason: the problem code } (counted, log rate-limited). */
function refused(ctx: RequestContext, r: Rejection): Rejection {
  ctx.runtime?.events.emit({ type: 'body', reason: r.code, route: ctx.routeId, clientIp: ctx.clientIp, requestId: ctx.id, time: Date.now() });
  return r;
}

/** A decoding error as a problem: the position or JSON Pointer of the fault, never the offending value. */
export function bodyRejection(e: BodyError): Rejection {
  const extensions: Record<string, string | number> = {};
  if (e.position !== undefined) extensions.position = e.position;
  if (e.pointer !== undefined) extensions.pointer = e.pointer;
  return { status: e.status, code: e.code, detail: e.detail, extensions };
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** Reads the whole request body, or answers why not (413 past `max`, the client going away). */
function readBody(ctx: RequestContext, max: number): Promise<Buffer | Rejection> {
  const req = ctx.req;
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (r: Buffer | Rejection): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
      resolve(r);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > max) {
        req.pause();
        ctx.bytesIn = size;
        done({ status: 413, code: 'body-too-large', detail: `request body larger than ${max} bytes`, close: true });
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => done(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    const onError = (): void => done(CLIENT_CLOSED);
    const onAborted = (): void => done(CLIENT_CLOSED);
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}
