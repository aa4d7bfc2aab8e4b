// The status listener: liveness and readiness for orchestrators and load balancers. It binds to
// 127.0.0.1 by default because it is an operator surface, not part of the public API.
import http from 'node:http';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { RuntimeHolder } from '../server/handler.js';
import { purgeAll, cacheStoresOf, broadcastPurge, type PurgeSpec } from '../services/cache-purge.js';
import { bindError } from '../server/bind-error.js';
import { nodeMetrics, metricsContentType } from '../observability/node-metrics.js';
import { NODE_WORKERS_ENV } from '../state/index.js';

export interface StatusServer {
  address(): { address: string; port: number };
  close(): Promise<void>;
}

/** Env variable holding the admin token when server.status.adminToken is not set. */
export const ADMIN_TOKEN_ENV = 'PORTCULLIS_ADMIN_TOKEN';
export const MIN_ADMIN_TOKEN_LENGTH = 32;

/**
 * The admin token in force: server.status.adminToken, else $PORTCULLIS_ADMIN_TOKEN. undefined (admin
 * endpoints disabled) when neither is set or the value is shorter than MIN_ADMIN_TOKEN_LENGTH.
 */
export function resolveAdminToken(configured: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const t = configured !== undefined && configured !== '' ? configured : env[ADMIN_TOKEN_ENV];
  return t !== undefined && t.length >= MIN_ADMIN_TOKEN_LENGTH ? t : undefined;
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/**
 * Constant-time check of an `Authorization: Bearer <token>` value against the admin token: both sides are
 * hashed to 32 bytes first, so neither the content nor the length of the expected token leaks through
 * timing (timingSafeEqual needs equal lengths and would otherwise throw or short-circuit).
 */
export function adminTokenMatches(authorization: string | undefined, expected: string): boolean {
  if (authorization === undefined) return false;
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
  const given = m !== null ? m[1]! : '';
  // always hash and compare, also for a malformed header, so its shape does not change the timing much
  return timingSafeEqual(digest(given), digest(expected)) && m !== null;
}

export interface StatusServerOptions {
  /** the admin token currently configured (server.status.adminToken, read at each call so reloads apply) */
  readonly adminToken?: () => string | undefined;
}

export async function startStatusServer(holder: RuntimeHolder, address: string, port: number, opts: StatusServerOptions = {}): Promise<StatusServer> {
  const adminToken = (): string | undefined => resolveAdminToken(opts.adminToken?.());
  const workers = Number(process.env[NODE_WORKERS_ENV] ?? '1') || 1;
  const envToken = process.env[ADMIN_TOKEN_ENV];
  if (opts.adminToken?.() === undefined && envToken !== undefined && envToken !== '' && envToken.length < MIN_ADMIN_TOKEN_LENGTH) {
    // The config refuses a short token at validation; the environment cannot, so say so instead of silently disabling.
    holder.current.logger.warn({ variable: ADMIN_TOKEN_ENV, length: envToken.length }, `${ADMIN_TOKEN_ENV} is shorter than ${MIN_ADMIN_TOKEN_LENGTH} characters and is ignored: admin endpoints stay disabled`);
  }
  const server = http.createServer({ requestTimeout: 5000, headersTimeout: 5000 }, (req, res) => {
    const send = (status: number, body: unknown) => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', 'content-length': Buffer.byteLength(text) });
      res.end(req.method === 'HEAD' ? undefined : text);
    };
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/admin/cache/purge') {
      if (!adminAllowed(holder, adminToken(), req, res, send)) return;
      return adminCachePurge(holder, req, send);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, { status: 'method not allowed' });
    if (path === '/healthz') return send(200, { status: 'ok' });
    if (path === '/readyz') {
      const rt = holder.current;
      const notReady: string[] = [];
      for (const [name, u] of rt.upstreams) if (!u.isReady()) notReady.push(name);
      return notReady.length === 0
        ? send(200, { status: 'ready', generation: rt.generation })
        : send(503, { status: 'not ready', generation: rt.generation, unhealthy_upstreams: notReady });
    }
    if (path === '/metrics') {
      // Prometheus text format for the whole node: in cluster mode the primary merges every worker's
      // registry (src/observability/node-metrics.ts), whichever worker got the scrape.
      nodeMetrics(workers).then((text) => {
        res.writeHead(200, { 'content-type': metricsContentType, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
        res.end(req.method === 'HEAD' ? undefined : text);
      }, (err: unknown) => {
        holder.current.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'metrics unavailable');
        send(500, { status: 'metrics unavailable' });
      });
      return;
    }
    send(404, { status: 'not found' });
  });
  await new Promise<void>((resolve, reject) => {
    // The status listener is on by default (127.0.0.1:9901): when that port is taken, say which listener
    // it is and how to move or disable it, or a first-time user looks for the problem in listeners[].
    const fail = (err: unknown): void => reject(bindError(err, 'server.status (the status listener: /healthz, /readyz, /metrics)', address, port,
      'move it with server.status.port (and server.status.address), or turn it off with server.status.enabled: false'));
    server.once('error', fail);
    server.listen(port, address, () => { server.off('error', fail); resolve(); });
  });
  return {
    address() {
      const a = server.address();
      return a !== null && typeof a === 'object' ? { address: a.address, port: a.port } : { address, port };
    },
    close() {
      return new Promise((resolve) => { server.close(() => resolve()); server.closeAllConnections(); });
    },
  };
}

const MAX_ADMIN_BODY = 4096;

/**
 * Admin endpoints need `Authorization: Bearer <admin token>`. Without a configured token they are
 * disabled: 403 (the body says how to enable them). Missing or wrong token: 401 and a security event
 * { type: 'admin', reason: 'admin-token-missing' | 'admin-token-invalid' }.
 */
function adminAllowed(holder: RuntimeHolder, expected: string | undefined, req: http.IncomingMessage, res: http.ServerResponse, send: (status: number, body: unknown) => void): boolean {
  if (expected === undefined) {
    send(403, { status: `admin endpoints are disabled: set server.status.adminToken or ${ADMIN_TOKEN_ENV} (at least ${MIN_ADMIN_TOKEN_LENGTH} characters)` });
    return false;
  }
  const authorization = req.headers.authorization;
  if (adminTokenMatches(authorization, expected)) return true;
  holder.current.events.emit({
    type: 'admin',
    reason: authorization === undefined ? 'admin-token-missing' : 'admin-token-invalid',
    route: '',
    clientIp: req.socket.remoteAddress ?? '',
    requestId: '',
    time: Date.now(),
  });
  res.setHeader('www-authenticate', 'Bearer realm="portcullis-admin"');
  send(401, { status: 'unauthorized' });
  return false;
}

/**
 * POST /admin/cache/purge with {"key": "..."} or {"prefix": "..."} (docs/caching.md). JSON only: the
 * content type makes a browser preflight, so a web page cannot trigger it against a loopback listener.
 * In cluster mode the worker that answers purges its own stores and has the primary relay the purge.
 */
function adminCachePurge(holder: RuntimeHolder, req: http.IncomingMessage, send: (status: number, body: unknown) => void): void {
  // Checked after the token on purpose: an unauthenticated caller learns nothing about the endpoint.
  if (req.method !== 'POST') return send(405, { status: 'method not allowed' });
  if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) return send(415, { status: 'content-type must be application/json' });
  const chunks: Buffer[] = [];
  let size = 0;
  let tooBig = false;
  req.on('data', (c: Buffer) => { size += c.length; if (size > MAX_ADMIN_BODY) tooBig = true; else chunks.push(c); });
  req.on('end', () => {
    if (tooBig) return send(413, { status: 'body too large' });
    let spec: PurgeSpec;
    try {
      const b = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { key?: unknown; prefix?: unknown };
      if (typeof b.key === 'string' && b.key !== '' && b.prefix === undefined) spec = { key: b.key };
      else if (typeof b.prefix === 'string' && b.prefix !== '' && b.key === undefined) spec = { prefix: b.prefix };
      else return send(400, { status: 'give exactly one of "key" or "prefix" (a non-empty string)' });
    } catch {
      return send(400, { status: 'invalid JSON' });
    }
    const scope = holder.current.services;
    if (cacheStoresOf(scope).length === 0) return send(404, { status: 'no route caches responses' });
    purgeAll(scope, spec).then(
      (purged) => send(200, { status: 'purged', purged, relayed: broadcastPurge(spec) }),
      () => send(503, { status: 'cache store unavailable' }),
    );
  });
  req.on('error', () => undefined);
}
