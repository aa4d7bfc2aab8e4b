// Access log stage: one JSON line per exchange via pino, written when the response is over.
// Secrets never reach the log: we log a fixed set of fields, never whole header maps, and the few
// headers/query parameters an operator asks for pass through redaction compiled at load time.
import { pino, type Logger } from 'pino';
import type { Static } from '@sinclair/typebox';
import { AccessLogSchema } from '../../config/schema.js';
import type { RequestContext } from '../../pipeline/context.js';

export const schema = AccessLogSchema;
export type AccessLogConfig = Static<typeof AccessLogSchema>;

/** Always redacted, whatever the config says. */
export const ALWAYS_SECRET_HEADERS = ['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key'];
export const DEFAULT_SECRET_QUERY = ['token', 'access_token', 'id_token', 'refresh_token', 'api_key', 'apikey', 'key', 'password', 'passwd', 'secret', 'client_secret', 'code', 'signature', 'sig'];
const REDACTED = '[REDACTED]';

export interface AccessLogger {
  log(ctx: RequestContext): void;
  close(): void;
}

export function compile(cfg: AccessLogConfig | undefined): AccessLogger | undefined {
  if (cfg?.enabled === false) return undefined;
  const destination = cfg?.destination ?? 'stdout';
  const dest = pino.destination({
    dest: destination === 'stdout' ? 1 : destination === 'stderr' ? 2 : destination,
    sync: false,
    minLength: 4096,
    mkdir: true,
  });
  const logger: Logger = pino({ base: undefined, timestamp: pino.stdTimeFunctions.isoTime, messageKey: 'msg' }, dest);
  const secretHeaders = new Set([...ALWAYS_SECRET_HEADERS, ...(cfg?.redactHeaders ?? []).map((h) => h.toLowerCase())]);
  const secretQuery = new Set([...DEFAULT_SECRET_QUERY, ...(cfg?.redactQuery ?? []).map((q) => q.toLowerCase())]);
  const include = (cfg?.includeHeaders ?? []).map((h) => h.toLowerCase());
  const redactQuery = compileQueryRedactor(secretQuery);

  return {
    log(ctx) {
      const req = ctx.req;
      const line: Record<string, unknown> = {
        type: 'access',
        request_id: ctx.id,
        listener: ctx.listener,
        client_ip: ctx.clientIp,
        method: req.method,
        path: ctx.path || undefined,
        query: ctx.query ? redactQuery(ctx.query) : undefined,
        route: ctx.routeId || undefined,
        status: ctx.status || ctx.res.statusCode,
        bytes_in: ctx.bytesIn,
        bytes_out: ctx.bytesOut,
        duration_ms: round(performance.now() - ctx.start),
        upstream_ms: ctx.upstreamEnd > 0 ? round(ctx.upstreamEnd - ctx.upstreamStart) : undefined,
        upstream: ctx.upstreamTarget || undefined,
        attempts: ctx.attempts > 1 ? ctx.attempts : undefined,
        identity: ctx.identity ? { kind: ctx.identity.kind, id: ctx.identity.id } : undefined,
        block_reason: ctx.blockReason,
        aborted: ctx.res.writableFinished ? undefined : true,
      };
      if (include.length > 0) {
        const h: Record<string, string> = {};
        for (const name of include) {
          const v = req.headers[name];
          if (v !== undefined) h[name] = secretHeaders.has(name) ? REDACTED : Array.isArray(v) ? v.join(', ') : v;
        }
        line.headers = h;
      }
      logger.info(line);
    },
    close() {
      try { dest.flushSync(); } catch { /* not ready yet or already closed */ }
      // stdout/stderr outlive a configuration generation: flush them, never close them.
      if (destination !== 'stdout' && destination !== 'stderr') dest.end();
    },
  };
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;

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
