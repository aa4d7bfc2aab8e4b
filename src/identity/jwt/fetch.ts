// Small HTTP client for identity providers (JWKS, OIDC discovery, introspection): bounded time, bounded
// body, strict JSON, no redirects (undici's request does not follow them), optional private CA. Errors
// are returned as short messages safe to log: never the URL (it may carry credentials) nor the body.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Agent, request, type Dispatcher } from 'undici';

/** JWKS and discovery documents are small; anything bigger is not what we asked for. */
export const MAX_IDP_BODY_BYTES = 1024 * 1024;

export interface JsonReply {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly json: unknown;
}

export class IdpFetchError extends Error {}

export interface IdpRequest {
  readonly method?: 'GET' | 'POST';
  readonly headers?: Record<string, string>;
  readonly body?: string;
  readonly timeoutMs: number;
  readonly maxBytes?: number;
  readonly dispatcher?: Dispatcher;
}

/** PEM inline (contains -----BEGIN) or a file path relative to baseDir. */
export function readPem(value: string, baseDir: string): string {
  if (value.includes('-----BEGIN')) return value;
  return readFileSync(resolve(baseDir, value), 'utf8');
}

/** An undici Agent trusting `ca` (PEM or file), or undefined for the default dispatcher. */
export function idpAgent(ca: string | undefined, baseDir: string): Agent | undefined {
  if (ca === undefined) return undefined;
  return new Agent({ connect: { ca: readPem(ca, baseDir) } });
}

/**
 * Requests `url` and parses the reply as JSON (any status: callers decide what a status means).
 * Throws IdpFetchError on timeout, network failure, an oversized body or invalid JSON.
 */
export async function fetchJson(url: string, req: IdpRequest): Promise<JsonReply> {
  const maxBytes = req.maxBytes ?? MAX_IDP_BODY_BYTES;
  const signal = AbortSignal.timeout(req.timeoutMs);
  let res: Dispatcher.ResponseData;
  try {
    res = await request(url, {
      method: req.method ?? 'GET',
      headers: req.headers,
      body: req.body,
      headersTimeout: req.timeoutMs,
      bodyTimeout: req.timeoutMs,
      signal,
      ...(req.dispatcher !== undefined ? { dispatcher: req.dispatcher } : {}),
    });
  } catch (err) {
    throw new IdpFetchError(signal.aborted ? 'timeout' : `network error (${(err as NodeJS.ErrnoException).code ?? (err as Error).name})`);
  }
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    res.body.destroy();
    throw new IdpFetchError('response body too large');
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const c of res.body as AsyncIterable<Buffer>) {
      size += c.length;
      if (size > maxBytes) { res.body.destroy(); throw new IdpFetchError('response body too large'); }
      chunks.push(c);
    }
  } catch (err) {
    if (err instanceof IdpFetchError) throw err;
    throw new IdpFetchError(signal.aborted ? 'timeout' : 'connection lost while reading the response');
  }
  let json: unknown;
  try {
    json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new IdpFetchError(`invalid JSON (status ${res.statusCode})`);
  }
  return { status: res.statusCode, headers: res.headers, json };
}

/** A plain JSON object (not an array, not null). */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Cache lifetime from Cache-Control max-age (no-store/no-cache: 0) or Expires, in ms; undefined when
 * the reply says nothing.
 */
export function cacheLifetimeMs(headers: Readonly<Record<string, string | string[] | undefined>>, nowMs: number): number | undefined {
  const ccRaw = headers['cache-control'];
  const cc = Array.isArray(ccRaw) ? ccRaw.join(',') : ccRaw;
  if (cc !== undefined) {
    const lower = cc.toLowerCase();
    if (/(^|[\s,])(no-store|no-cache)([\s,=]|$)/.test(lower)) return 0;
    const m = /(^|[\s,])max-age\s*=\s*"?(\d{1,10})"?/.exec(lower);
    if (m) return Number(m[2]) * 1000;
  }
  const expRaw = headers.expires;
  const exp = Array.isArray(expRaw) ? expRaw[0] : expRaw;
  if (exp !== undefined) {
    const t = Date.parse(exp);
    if (Number.isNaN(t)) return 0; // RFC 9111 5.3: an invalid Expires means "already expired"
    const dateRaw = headers.date;
    const date = Date.parse(Array.isArray(dateRaw) ? dateRaw[0] ?? '' : dateRaw ?? '');
    return Math.max(0, t - (Number.isNaN(date) ? nowMs : date));
  }
  return undefined;
}
