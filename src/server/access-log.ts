// Access log stage: one JSON line per exchange via pino, written when the response is over.
// Secrets never reach the log: we log a fixed set of fields, never whole header maps, and the few
// headers/query parameters an operator asks for pass through redaction compiled at load time.
import { ALWAYS_SECRET_HEADERS, DEFAULT_SECRET_QUERY, headerNameLooksSecret, type CredentialNames } from '../config/credentials.js';

export { DEFAULT_SECRET_QUERY } from '../config/credentials.js';
import { pino } from 'pino';
import { appendFileSync } from 'node:fs';
import type { Static } from '@sinclair/typebox';
import type { AccessLogSchema } from '../config/schema.js';
import type { RequestContext } from '../pipeline/context.js';

export type AccessLogConfig = Static<typeof AccessLogSchema>;

/** Always redacted, whatever the config says. */
const REDACTED = '[REDACTED]';

export interface AccessLogger {
  log(ctx: RequestContext): void;
  close(): void;
}

/**
 * Lines are batched into writes of about this many bytes (and flushed at least every FLUSH_MS, so a killed
 * process loses at most that much; a process that exits, even on an uncaught exception, flushes synchronously). Files are
 * written synchronously in 64 KiB batches (one short write every few hundred requests, as nginx does;
 * measured about 4 µs a request cheaper than handing each batch to the threadpool); stdout/stderr stay
 * asynchronous, because a pipe whose reader stalls must never block the event loop.
 */
const FILE_BATCH_BYTES = 64 * 1024;
const STREAM_BATCH_BYTES = 16 * 1024;
export const ACCESS_LOG_FLUSH_MS = 100;
const FLUSH_MS = ACCESS_LOG_FLUSH_MS;

/** Open loggers' synchronous flushes, run on process exit (one 'exit' listener for all of them). */
const exitFlushes = new Set<() => void>();
let exitHooked = false;
function onExit(fn: () => void): () => void {
  if (!exitHooked) {
    exitHooked = true;
    process.on('exit', () => { for (const f of exitFlushes) f(); });
  }
  exitFlushes.add(fn);
  return () => { exitFlushes.delete(fn); };
}

/**
 * The line is built by a serializer compiled for its fixed shape and written through pino's destination
 * (SonicBoom, asynchronous, batched). pino's generic `logger.info(obj)` was measured here at about 30 µs
 * per request with an ISO timestamp (object walk, an ISO timestamp formatted per line, one write per line);
 * this costs a small fraction of that and keeps pino's default line format (`level`, `time` in epoch ms).
 */
/**
 * `credentials`: header and query parameter names that carry credentials on some route (API key headers
 * and parameters, attestation headers), redacted whatever the config says.
 */
export function compile(cfg: AccessLogConfig | undefined, credentials: CredentialNames = { headers: [], query: [] }): AccessLogger | undefined {
  if (cfg?.enabled === false) return undefined;
  const destination = cfg?.destination ?? 'stdout';
  const isFile = destination !== 'stdout' && destination !== 'stderr';
  const batchBytes = isFile ? FILE_BATCH_BYTES : STREAM_BATCH_BYTES;
  const dest = pino.destination({
    dest: destination === 'stdout' ? 1 : destination === 'stderr' ? 2 : destination,
    sync: isFile,
    mkdir: true,
  });
  const secretHeaders = new Set([...ALWAYS_SECRET_HEADERS, ...credentials.headers, ...(cfg?.redactHeaders ?? [])].map((h) => h.toLowerCase()));
  const secretQuery = new Set([...DEFAULT_SECRET_QUERY, ...credentials.query, ...(cfg?.redactQuery ?? [])].map((q) => q.toLowerCase()));
  // Decided once per configuration: a header is logged as [REDACTED] when it is a known credential
  // header, listed in redactHeaders, or its name says it carries a secret (*token*, *session*, *auth*, ...).
  const include = (cfg?.includeHeaders ?? []).map((h) => h.toLowerCase());
  const includeSecret = include.map((h) => secretHeaders.has(h) || headerNameLooksSecret(h));
  const redactQuery = compileQueryRedactor(secretQuery);

  let buf = '';
  let closed = false;
  const flush = () => {
    if (buf === '') return;
    const chunk = buf;
    buf = '';
    dest.write(chunk);
  };
  const timer = setInterval(flush, FLUSH_MS);
  timer.unref();
  const flushSync = () => {
    flush();
    try { dest.flushSync(); } catch { /* not ready yet or already closed */ }
  };
  const unhookExit = onExit(flushSync);
  /**
   * A line that arrives after close() (a request or WebSocket tunnel of a retired generation that ended
   * after its generation's log was closed) is still written, synchronously: rare, and never lost.
   */
  const late = (line: string) => {
    try {
      if (isFile) appendFileSync(destination, line);
      else dest.write(line);
    } catch { /* destination gone: nothing left to write to */ }
  };

  return {
    log(ctx) {
      const req = ctx.req;
      const res = ctx.res;
      // id (generated or SAFE_ID-checked), listener and route ids (config patterns), canonical IPs and
      // HTTP method tokens cannot contain characters JSON must escape; path and query can.
      let line = `{"level":30,"time":${Date.now()},"type":"access","request_id":"${ctx.id}","listener":"${ctx.listener}","client_ip":"${ctx.clientIp}","method":"${req.method ?? ''}"`;
      if (ctx.path !== '') line += `,"path":${str(ctx.path)}`;
      if (ctx.query !== '') line += `,"query":${str(redactQuery(ctx.query))}`;
      if (ctx.routeId !== '') line += `,"route":"${ctx.routeId}"`;
      // the status actually sent: 0 when the exchange ended before any response head went out
      line += `,"status":${ctx.status || (res !== undefined && res.headersSent ? res.statusCode : 0)},"bytes_in":${ctx.bytesIn},"bytes_out":${ctx.bytesOut},"duration_ms":${ms3(performance.now() - ctx.start)}`;
      if (ctx.upstreamEnd > 0) line += `,"upstream_ms":${ms3(ctx.upstreamEnd - ctx.upstreamStart)}`;
      if (ctx.upstreamTarget !== '') line += `,"upstream":"${ctx.upstreamTarget}"`; // a URL origin: nothing to escape
      if (ctx.attempts > 1) line += `,"attempts":${ctx.attempts}`;
      if (ctx.throttleMs > 0) line += `,"throttle_ms":${ctx.throttleMs}`; // rate-limit delay mode
      if (ctx.identity !== undefined) line += `,"identity":{"kind":${str(ctx.identity.kind)},"id":${str(ctx.identity.id)}}`;
      if (ctx.blockReason !== undefined) line += `,"block_reason":"${ctx.blockReason}"`; // our own slugs
      if (res !== undefined && !res.writableFinished) line += `,"aborted":true,"outcome":"${ctx.outcome ?? 'client-closed'}"`; // our own slugs
      else if (ctx.outcome !== undefined) line += `,"outcome":"${ctx.outcome}"`;
      if (include.length > 0) {
        let h = '';
        for (let i = 0; i < include.length; i++) {
          const name = include[i]!;
          const v = req.headers[name];
          if (v === undefined) continue;
          const value = includeSecret[i] === true ? REDACTED : Array.isArray(v) ? v.join(', ') : v;
          h += `${h === '' ? '' : ','}${str(name)}:${str(value)}`;
        }
        line += `,"headers":{${h}}`;
      }
      if (closed) { late(`${line}}\n`); return; }
      buf += `${line}}\n`;
      if (buf.length >= batchBytes) flush();
    },
    close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      unhookExit();
      flushSync();
      // stdout/stderr outlive a configuration generation: flush them, never close them.
      if (isFile) dest.end();
    },
  };
}

/** JSON string literal; JSON.stringify only when something needs escaping (most paths need none). */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\u007f-\uffff]/;
const str = (s: string): string => (NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`);


/** Milliseconds with microsecond precision, formatted with integer arithmetic (double-to-string is ~4x slower). */
function ms3(ms: number): string {
  const us = Math.round(ms * 1000);
  const i = Math.floor(us / 1000);
  const f = us - i * 1000;
  return f === 0 ? `${i}` : `${i}${f < 10 ? '.00' : f < 100 ? '.0' : '.'}${f}`;
}

/** Replaces the value of every secret parameter with [REDACTED]; names compared case-insensitively after decoding. */
export function compileQueryRedactor(secret: ReadonlySet<string>): (query: string) => string {
  return (query) => {
    const parts = query.split('&');
    let changed = false;
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      const eq = p.indexOf('=');
      const rawName = eq === -1 ? p : p.slice(0, eq);
      let name: string;
      try { name = decodeURIComponent(rawName.replace(/\+/g, ' ')).toLowerCase(); } catch { name = rawName.toLowerCase(); }
      if (secret.has(name)) { parts[i] = `${rawName}=${REDACTED}`; changed = true; }
    }
    return changed ? parts.join('&') : query;
  };
}
