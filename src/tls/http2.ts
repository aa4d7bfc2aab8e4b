// HTTP/2 on HTTPS listeners: what the shared request handler needs to serve h2 through Node's
// compatibility API exactly like HTTP/1.1, and the session-level defences.
//
// - GatewayHttp2Response: never writes connection-specific headers (RFC 9113 8.2.2: `connection`,
//   `keep-alive`, `transfer-encoding`, `upgrade`, ... make Node throw or warn), ignores reason phrases
//   (h2 has none; Node warns), and has `destroyed` like http.ServerResponse (the proxy checks it before
//   dispatching: without it a cancelled stream would still be forwarded upstream).
// - http2RequestHeaders: rawHeaders without pseudo-headers, `:authority` as Host, cookie crumbs joined.
// - Rapid reset (CVE-2023-44487): streams the client cancels before a response are counted per session
//   and second; above the limit the session gets GOAWAY(ENHANCE_YOUR_CALM) and is closed.
import http2, { type Http2SecureServer, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { OutgoingHttpHeaders } from 'node:http';
import type { Logger } from '../observability/logger.js';
import { HOP_BY_HOP_HEADERS } from '../net/header-tables.js';

const { NGHTTP2_NO_ERROR, NGHTTP2_ENHANCE_YOUR_CALM } = http2.constants;

/** Connection-specific header fields: illegal in HTTP/2 (RFC 9113 8.2.2). */
const CONNECTION_SPECIFIC = new Set([...HOP_BY_HOP_HEADERS, 'http2-settings']);

type FlatHeaders = ReadonlyArray<string | number | readonly string[]>;
type AnyHeaders = OutgoingHttpHeaders | FlatHeaders;

const isConnectionSpecific = (name: string): boolean => name.length <= 17 && CONNECTION_SPECIFIC.has(name.toLowerCase());

/** Drops connection-specific fields from a header object or flat [name, value, ...] list (copying only when needed). */
export function withoutConnectionHeaders<T extends AnyHeaders | undefined>(h: T): T {
  if (h === undefined || h === null) return h;
  if (Array.isArray(h)) {
    const flat = h as FlatHeaders;
    let i = 0;
    for (; i < flat.length; i += 2) if (isConnectionSpecific(String(flat[i]))) break;
    if (i >= flat.length) return h;
    const out: (string | number | readonly string[])[] = [];
    for (let j = 0; j < flat.length; j += 2) if (!isConnectionSpecific(String(flat[j]))) out.push(flat[j]!, flat[j + 1]!);
    return out as unknown as T;
  }
  const obj = h as OutgoingHttpHeaders;
  let found = false;
  for (const k in obj) if (isConnectionSpecific(k)) { found = true; break; }
  if (!found) return h;
  const out: OutgoingHttpHeaders = {};
  for (const k in obj) if (!isConnectionSpecific(k)) out[k] = obj[k];
  return out as T;
}

export class GatewayHttp2Response extends http2.Http2ServerResponse {
  override writeHead(statusCode: number, a?: string | OutgoingHttpHeaders | readonly string[], b?: OutgoingHttpHeaders | readonly string[]): this {
    // HTTP/2 has no reason phrase; passing one only makes Node print a warning.
    const headers = typeof a === 'string' || a === undefined ? b : a;
    return super.writeHead(statusCode, withoutConnectionHeaders(headers as AnyHeaders | undefined) as OutgoingHttpHeaders | undefined);
  }

  override setHeader(name: string, value: number | string | readonly string[]): void {
    if (isConnectionSpecific(name)) return;
    super.setHeader(name, value);
  }
}
// An accessor on the prototype: http.ServerResponse has `destroyed`, Node's Http2ServerResponse does not.
Object.defineProperty(GatewayHttp2Response.prototype, 'destroyed', {
  configurable: true,
  get(this: http2.Http2ServerResponse): boolean {
    const s = this.stream as ServerHttp2Stream | undefined;
    return s === undefined || s.destroyed;
  },
});

/**
 * An HTTP/2 request's header list for the HTTP/1-shaped header scan: no pseudo-headers; `:authority` becomes
 * Host when there is none (RFC 9113 8.3.1); cookie fields joined with "; " (RFC 9113 8.2.3), as upstreams
 * speak HTTP/1.1. undefined when Host and `:authority` disagree.
 */
export function http2RequestHeaders(raw: readonly string[]): string[] | undefined {
  const out: string[] = [];
  let authority: string | undefined, host: string | undefined, cookie: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    if (name.charCodeAt(0) === 58 /* : */) {
      if (name === ':authority') authority = value;
      continue;
    }
    if (name === 'cookie') { cookie = cookie === undefined ? value : `${cookie}; ${value}`; continue; }
    if (name === 'host') host = value;
    out.push(name, value);
  }
  if (cookie !== undefined) out.push('cookie', cookie);
  if (authority !== undefined) {
    if (host === undefined) out.push('host', authority);
    else if (host.toLowerCase() !== authority.toLowerCase()) return undefined;
  }
  return out;
}

export interface Http2Defaults { maxConcurrentStreams: number; maxHeaderListSize: number; maxResetsPerSecond: number }
export const HTTP2_DEFAULTS: Readonly<Http2Defaults> = Object.freeze({ maxConcurrentStreams: 100, maxHeaderListSize: 16 * 1024, maxResetsPerSecond: 200 });

export function resolveHttp2Limits(cfg: Partial<Http2Defaults> | undefined): Http2Defaults {
  return {
    maxConcurrentStreams: cfg?.maxConcurrentStreams ?? HTTP2_DEFAULTS.maxConcurrentStreams,
    maxHeaderListSize: cfg?.maxHeaderListSize ?? HTTP2_DEFAULTS.maxHeaderListSize,
    maxResetsPerSecond: cfg?.maxResetsPerSecond ?? HTTP2_DEFAULTS.maxResetsPerSecond,
  };
}

const kSession = Symbol('portcullis.h2session');

interface SessionState {
  readonly session: ServerHttp2Session;
  readonly listener: string;
  readonly logger: Logger;
  readonly maxResets: number;
  resets: number;
  windowStart: number;
  tripped: boolean;
}

type TrackedStream = ServerHttp2Stream & { [kSession]?: SessionState };
type TrackedSession = ServerHttp2Session & { [kSession]?: SessionState };

// Module functions with `this`, not closures: one listener registration per stream, no allocation.
function onStream(stream: ServerHttp2Stream): void {
  const state = (stream.session as TrackedSession | undefined)?.[kSession];
  if (state === undefined) return;
  (stream as TrackedStream)[kSession] = state;
  stream.on('close', onStreamClose);
}

function onStreamClose(this: TrackedStream): void {
  const st = this[kSession];
  if (st === undefined || this.rstCode === NGHTTP2_NO_ERROR || this.headersSent) return;
  // Closed with an error before any response: a client reset (or a stream the session refused).
  const now = Date.now();
  if (now - st.windowStart >= 1000) { st.windowStart = now; st.resets = 0; }
  if (++st.resets <= st.maxResets || st.tripped) return;
  st.tripped = true;
  const s = st.session;
  const ip = s.socket?.remoteAddress;
  st.logger.warn({ event: 'http2-rapid-reset', client_ip: ip, listener: st.listener, resets_per_second: st.resets }, `HTTP/2 rapid reset from ${ip ?? 'unknown'}: more than ${st.maxResets} stream resets in one second, connection closed`);
  if (!s.destroyed) {
    try { s.goaway(NGHTTP2_ENHANCE_YOUR_CALM); } catch { /* already closing */ }
    s.destroy();
  }
}

function onSessionIdle(this: ServerHttp2Session): void {
  // Graceful: GOAWAY, open streams may finish.
  if (!this.closed && !this.destroyed) this.close();
}

function ignoreError(): void { /* a session or socket error; the session is destroyed by Node */ }

export interface Http2SessionTracker {
  readonly sessions: ReadonlySet<ServerHttp2Session>;
  /** GOAWAY to every session: no new streams, open ones finish. */
  closeAll(): void;
  destroyAll(): void;
}

/** Installs the session-level defences on an HTTP/2 server and tracks its sessions for shutdown. */
export function installHttp2Defences(server: Http2SecureServer, opts: { listener: string; logger: Logger; maxResetsPerSecond: number; idleTimeoutMs: number }): Http2SessionTracker {
  const sessions = new Set<ServerHttp2Session>();
  server.on('session', (session: ServerHttp2Session) => {
    (session as TrackedSession)[kSession] = {
      session, listener: opts.listener, logger: opts.logger, maxResets: opts.maxResetsPerSecond, resets: 0, windowStart: 0, tripped: false,
    };
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
    session.on('error', ignoreError);
    if (opts.idleTimeoutMs > 0) session.setTimeout(opts.idleTimeoutMs, onSessionIdle);
  });
  server.on('stream', onStream);
  server.on('sessionError', ignoreError);
  return {
    sessions,
    closeAll() { for (const s of sessions) if (!s.closed && !s.destroyed) s.close(); },
    destroyAll() { for (const s of sessions) s.destroy(); },
  };
}
