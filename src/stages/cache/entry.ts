// A stored response, its wire form for shared stores, Vary variants and the RFC 9111 freshness rules.
import type { IncomingHttpHeaders } from 'node:http';

/** One stored response. Headers are the upstream's (hop-by-hop and gateway-owned ones already dropped). */
export class CachedResponse {
  constructor(
    readonly status: number,
    /** flat [name, value, ...], lower-case names, no content-length / age */
    readonly headers: readonly (string | string[])[],
    readonly body: Buffer,
    /** Date.now() when stored */
    readonly storedAt: number,
    /** Date.now() after which it must not be served */
    readonly expiresAt: number,
    /** age (seconds) the response already had when it arrived (RFC 9111 4.2.3 corrected_initial_age) */
    readonly initialAge: number,
  ) {}

  /** bytes it costs in the memory store (body + header text + bookkeeping) */
  get size(): number {
    let n = this.body.length + 64;
    const h = this.headers;
    for (let i = 0; i < h.length; i++) {
      const v = h[i]!;
      n += typeof v === 'string' ? v.length : v.reduce((a, x) => a + x.length, 0);
    }
    return n;
  }

  /** Age header value at `now` (RFC 9111 4.2.3: corrected initial age + resident time) */
  age(now: number): number {
    return this.initialAge + Math.max(0, Math.floor((now - this.storedAt) / 1000));
  }
}

interface WireHead { s: number; h: readonly (string | string[])[]; t: number; e: number; a: number }

/** Binary form for Redis: uint32 head length, JSON head, body. */
export function encodeEntry(e: CachedResponse): Buffer {
  const head = Buffer.from(JSON.stringify({ s: e.status, h: e.headers, t: e.storedAt, e: e.expiresAt, a: e.initialAge } satisfies WireHead));
  const out = Buffer.allocUnsafe(4 + head.length + e.body.length);
  out.writeUInt32BE(head.length, 0);
  head.copy(out, 4);
  e.body.copy(out, 4 + head.length);
  return out;
}

/** undefined when the bytes are not a valid entry (another writer, corruption): treated as a miss. */
export function decodeEntry(b: Buffer): CachedResponse | undefined {
  try {
    if (b.length < 4) return undefined;
    const n = b.readUInt32BE(0);
    if (4 + n > b.length) return undefined;
    const h = JSON.parse(b.subarray(4, 4 + n).toString('utf8')) as WireHead;
    if (typeof h.s !== 'number' || !Array.isArray(h.h) || typeof h.t !== 'number' || typeof h.e !== 'number' || typeof h.a !== 'number') return undefined;
    return new CachedResponse(h.s, h.h, Buffer.from(b.subarray(4 + n)), h.t, h.e, h.a);
  } catch {
    return undefined;
  }
}

/** Marker for a missing request header in a variant (distinct from an empty value). */
const ABSENT = '\x01';

/** RFC 9111 4.1: header values compared after combining fields and dropping optional whitespace. */
export function normalizeHeaderValue(v: string | string[] | undefined): string | undefined {
  if (v === undefined) return undefined;
  const s = Array.isArray(v) ? v.join(',') : v;
  return s.trim().replace(/[ \t]*,[ \t]*/g, ',');
}

/**
 * The variant of a request under a Vary list (comma-joined lower-case names): `name=value\n` per name.
 * The Redis lookup script builds the same string (redis-store.ts); keep them in step.
 */
export function variantOf(vary: string, headers: IncomingHttpHeaders): string {
  if (vary === '') return '';
  let out = '';
  for (const name of vary.split(',')) out += `${name}=${normalizeHeaderValue(headers[name]) ?? ABSENT}\n`;
  return out;
}

/** Parsed Cache-Control directives we act on (RFC 9111 5.2). */
export interface Directives {
  noStore: boolean;
  noCache: boolean;
  private: boolean;
  maxAge: number | undefined;
  sMaxAge: number | undefined;
}

const DELTA = /^"?(\d{1,10})"?$/;

export function parseCacheControl(v: string | string[] | number | undefined): Directives {
  const d: Directives = { noStore: false, noCache: false, private: false, maxAge: undefined, sMaxAge: undefined };
  if (v === undefined) return d;
  const s = Array.isArray(v) ? v.join(',') : String(v);
  for (const part of s.split(',')) {
    const eq = part.indexOf('=');
    const name = (eq === -1 ? part : part.slice(0, eq)).trim().toLowerCase();
    const arg = eq === -1 ? undefined : part.slice(eq + 1).trim();
    switch (name) {
      case 'no-store': d.noStore = true; break;
      // `no-cache="field"` and `private="field"` (qualified forms) are treated as the unqualified ones: safer.
      case 'no-cache': d.noCache = true; break;
      case 'private': d.private = true; break;
      case 'max-age': {
        const m = arg === undefined ? null : DELTA.exec(arg);
        // An invalid max-age means "stale" (RFC 9111 4.2.1): 0.
        d.maxAge = m ? Number(m[1]) : 0;
        break;
      }
      case 's-maxage': {
        const m = arg === undefined ? null : DELTA.exec(arg);
        d.sMaxAge = m ? Number(m[1]) : 0;
        break;
      }
      default: break;
    }
  }
  return d;
}

/** Seconds since the epoch of an HTTP-date, or undefined when it is not one. */
export function httpDate(v: string | string[] | number | undefined): number | undefined {
  if (typeof v !== 'string') return undefined;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : t;
}
