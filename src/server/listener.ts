// One listener: node:http with Node's strict parser and the configured protocol limits, connection caps
// (per listener and per client IP), parser-error answers, and WebSocket upgrades. With `tls` it is HTTPS:
// an HTTP/2 server that also speaks HTTP/1.1 (ALPN), or https.Server when h2 is off; the same request
// handler serves both protocols (see src/tls/http2.ts for what HTTP/2 needs adapted).
import { bindError } from './bind-error.js';
import http, { type ServerResponse } from 'node:http';
import https from 'node:https';
import http2, { type Http2SecureServer } from 'node:http2';
import net, { type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { ListenerLimitsResolved } from '../gateway/runtime.js';
import { createRequestHandler, createUpgradeHandler, type RuntimeHolder } from './handler.js';
import { sendProblem, writeRawProblem } from './problem.js';
import { randomUUID } from 'node:crypto';
import type { TlsManager } from '../tls/manager.js';
import { GatewayHttp2Response, installHttp2Defences, resolveHttp2Limits, type Http2Defaults, type Http2SessionTracker } from '../tls/http2.js';
import type { Logger } from '../observability/logger.js';
import { silentLogger } from '../observability/logger.js';
import { Counter, register } from 'prom-client';
import { logThrottle } from '../observability/log-throttle.js';

export type ListenerServer = http.Server | https.Server | Http2SecureServer;

export interface Listener {
  readonly name: string;
  readonly server: ListenerServer;
  /** the listener's TLS manager (HTTPS listeners); closed with the listener */
  readonly tls: TlsManager | undefined;
  address(): { address: string; port: number };
  /** applies limits that can change on a running listener (timeouts, counts) */
  applyLimits(lim: ListenerLimitsResolved): void;
  /** stop accepting, let in-flight requests finish, close idle keep-alive connections */
  close(deadlineMs: number): Promise<void>;
}

export interface ListenerOptions {
  /** makes the listener HTTPS; the listener owns it from here (closes it) */
  tls?: TlsManager;
  /** `listeners[].http2` (HTTPS listeners with h2) */
  http2?: Partial<Http2Defaults>;
  logger?: Logger;
}

/** Node's HTTP/1 server settings, for http.Server, https.Server and the HTTP/1.1 side of an HTTP/2 server. */
function applyHttp1Limits(s: ListenerServer, lim: ListenerLimitsResolved): void {
  const h = s as http.Server;
  h.requestTimeout = lim.requestTimeoutMs;
  h.headersTimeout = Math.min(lim.headersTimeoutMs, lim.requestTimeoutMs || lim.headersTimeoutMs);
  h.keepAliveTimeout = lim.keepAliveTimeoutMs;
  // Node silently drops headers past maxHeadersCount; keeping one more lets the handler see the excess and answer 431.
  h.maxHeadersCount = lim.maxHeaderCount + 1;
  h.maxConnections = lim.maxConnections;
  h.maxRequestsPerSocket = lim.maxRequestsPerConnection;
}

export async function startListener(holder: RuntimeHolder, name: string, address: string, port: number, lim: ListenerLimitsResolved, opts: ListenerOptions = {}): Promise<Listener> {
  if (opts.tls !== undefined) {
    try {
      return await startSecureListener(holder, name, address, port, lim, opts.tls, opts);
    } catch (err) {
      opts.tls.close();
      throw err;
    }
  }
  const server = http.createServer({
    // Never the lenient parser: it is how request smuggling gets in.
    insecureHTTPParser: false,
    maxHeaderSize: lim.maxHeaderBytes,
    requestTimeout: lim.requestTimeoutMs,
    headersTimeout: Math.min(lim.headersTimeoutMs, lim.requestTimeoutMs || lim.headersTimeoutMs),
    keepAliveTimeout: lim.keepAliveTimeoutMs,
    connectionsCheckingInterval: 1000,
    // Host is checked by the handler (missing, duplicate, invalid: a problem+json 400); Node's own check
    // would answer with a bare 400 instead.
    requireHostHeader: false,
    joinDuplicateHeaders: false,
  }, createRequestHandler(holder, name, false));
  // Node silently drops headers past maxHeadersCount; keeping one more lets the handler see the excess and answer 431.
  server.maxHeadersCount = lim.maxHeaderCount + 1;
  server.maxConnections = lim.maxConnections;
  server.maxRequestsPerSocket = lim.maxRequestsPerConnection;
  const refusals = refusalRecorder(name, opts.logger ?? silentLogger);
  const conns = installConnectionCaps(server, lim, refusals);
  const retirement = installRetirement(server);
  installHttp1Handlers(server, holder, name, lim, false, refusals);
  await listen(server, name, address, port);

  return {
    name,
    server,
    tls: undefined,
    address: () => boundAddress(server, address, port),
    applyLimits: (next) => applyHttp1Limits(server, next),
    close(deadlineMs) {
      return new Promise<void>((resolve) => {
        const done = () => { clearTimeout(timer); retirement.done(); resolve(); };
        const timer = setTimeout(() => {
          server.closeAllConnections();
          for (const s of conns) s.destroy();
          done();
        }, deadlineMs);
        timer.unref();
        // In-flight requests finish; each connection closes after its next response or a short idle grace.
        retirement.retire(deadlineMs, conns, done);
      });
    },
  };
}

function listen(server: ListenerServer, name: string, address: string, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const fail = (err: unknown): void => reject(bindError(err, `listener ${JSON.stringify(name)}`, address, port, `change its address or port (listeners[] with name: ${name})`));
    server.once('error', fail);
    server.listen(port, address, () => { server.off('error', fail); resolve(); });
  });
}

function boundAddress(server: ListenerServer, address: string, port: number): { address: string; port: number } {
  const a = server.address();
  if (a === null || typeof a === 'string') return { address, port };
  return { address: a.address, port: a.port };
}

export type RefusalReason = 'bad-request' | 'headers-too-large' | 'request-timeout' | 'per-ip-cap' | 'max-connections';

let refusalsCounter: Counter<'reason' | 'listener'> | undefined;
function refusalsMetric(): Counter<'reason' | 'listener'> {
  refusalsCounter ??= (register.getSingleMetric('portcullis_protocol_refusals_total') as Counter<'reason' | 'listener'> | undefined)
    ?? new Counter({ name: 'portcullis_protocol_refusals_total', help: 'Requests and connections refused before a request existed (parser errors, head size or timeout, connection caps)', labelNames: ['reason', 'listener'] });
  return refusalsCounter;
}

/** Log lines per (listener, reason) per window; the rest are counted and reported with the next line. */
export const REFUSAL_LOG_BURST = 20;
export const REFUSAL_LOG_WINDOW_MS = 10_000;

export type RefusalRecorder = (reason: RefusalReason, clientIp: string, status?: number, requestId?: string) => void;

/**
 * Refusals that happen before a request object exists (llhttp's 400/431/408 via 'clientError', connections
 * dropped at a connection cap) have no access-log line: each is counted in
 * `portcullis_protocol_refusals_total{reason,listener}` and logged at warn level, at most REFUSAL_LOG_BURST
 * lines per reason per 10 s; the next line logged carries how many were `suppressed`.
 */
export function refusalRecorder(listener: string, logger: Logger, now: () => number = Date.now): RefusalRecorder {
  const c = refusalsMetric();
  const throttle = logThrottle(REFUSAL_LOG_BURST, REFUSAL_LOG_WINDOW_MS, now);
  return (reason, clientIp, status, requestId) => {
    c.inc({ reason, listener });
    const suppressed = throttle.admit(reason);
    if (suppressed === undefined) return;
    logger.warn({
      event: 'protocol-refusal', listener, reason, client_ip: clientIp,
      ...(status !== undefined ? { status } : {}),
      ...(requestId !== undefined ? { request_id: requestId } : {}),
      ...(suppressed > 0 ? { suppressed } : {}),
    }, `refused before a request: ${reason}`);
  };
}

/** Per-IP connection cap on raw TCP connections (before any TLS work). Returns the set of open raw connections. */
function installConnectionCaps(server: ListenerServer, lim: ListenerLimitsResolved, refused: RefusalRecorder): Set<Socket> {
  const perIp = new Map<string, number>();
  const open = new Set<Socket>();
  // Past `maxConnections` Node closes the connection itself and says so here.
  server.on('drop', (data?: { remoteAddress?: string }) => refused('max-connections', data?.remoteAddress ?? ''));
  server.on('connection', (socket: Socket) => {
    const ip = socket.remoteAddress ?? '';
    const n = (perIp.get(ip) ?? 0) + 1;
    if (n > lim.maxConnectionsPerIp) {
      socket.destroy();
      refused('per-ip-cap', ip);
      return;
    }
    perIp.set(ip, n);
    open.add(socket);
    socket.once('close', () => {
      open.delete(socket);
      const left = (perIp.get(ip) ?? 1) - 1;
      if (left <= 0) perIp.delete(ip);
      else perIp.set(ip, left);
    });
  });
  return open;
}

type HttpSocket = Socket & { _httpMessage?: ServerResponse | null; alpnProtocol?: string | false };

/** A retiring listener closes an idle keep-alive connection only after it stayed idle this long (at most half the drain). */
const RETIRE_IDLE_GRACE_MS = 1000;

interface Retirement {
  /** stop accepting; ask HTTP/1 connections to close after their next response; `closed` once every connection is gone */
  retire(deadlineMs: number, httpSockets: ReadonlySet<Socket>, closed: () => void): void;
  /** the drain is over (all connections gone, or the deadline): stop Node's connection checks */
  done(): void;
}

/**
 * A retiring listener (replaced on reload, or shutting down) asks its HTTP/1 keep-alive connections to go
 * away: the next response on each says `connection: close` and Node closes the connection once it is
 * written. Without this, a connection kept busy back to back is never idle, so closeIdleConnections()
 * never catches it and the drain deadline resets it mid-request. (Not kCondemned: a condemned connection
 * drops requests already on their way; here each request in progress or arriving is still answered.)
 *
 * Idle connections are not cut at once either (server.close() would: httpServerPreClose): a client may be
 * sending its next request on one right now, and would see a reset. An idle connection is closed once it
 * stayed idle for a grace period; a request arriving meanwhile is answered with `connection: close`.
 * HTTP/2 sessions get GOAWAY instead (Http2SessionTracker.closeAll).
 */
function installRetirement(server: ListenerServer): Retirement {
  let retiring = false;
  let grace = RETIRE_IDLE_GRACE_MS;
  server.prependListener('request', (req: { socket: Socket }, res: unknown) => {
    if (!retiring || !(res instanceof http.ServerResponse)) return;
    res.shouldKeepAlive = false;
    req.socket.setTimeout(0); // the idle grace timer, if this connection had one
  });
  const idleLater = (socket: Socket) => {
    // Node's server destroys a socket whose timeout fires when no request is running on it.
    if (!socket.destroyed && (socket as HttpSocket)._httpMessage == null) socket.setTimeout(grace);
  };
  return {
    retire(deadlineMs, httpSockets, closed) {
      retiring = true;
      grace = Math.max(1, Math.min(RETIRE_IDLE_GRACE_MS, Math.floor(deadlineMs / 2)));
      // Stop accepting without httpServerPreClose (which resets idle connections and stops the checks).
      net.Server.prototype.close.call(server, () => closed());
      for (const socket of httpSockets) {
        const hs = socket as HttpSocket;
        if (hs.alpnProtocol === 'h2') continue;
        const res = hs._httpMessage;
        if (res == null) idleLater(socket);
        // Not begun: its head says `connection: close`. Begun with keep-alive: idle after it, unless a next request comes.
        else if (!res.headersSent) res.shouldKeepAlive = false;
        else res.once('finish', () => setImmediate(idleLater, socket));
      }
    },
    done() {
      for (const sym of Object.getOwnPropertySymbols(server)) {
        if (sym.description === 'http.server.connectionsCheckingInterval') clearInterval((server as unknown as Record<symbol, NodeJS.Timeout>)[sym]);
      }
    },
  };
}

/** Parser errors, upgrades, Expect and CONNECT on HTTP/1 connections (plain, or HTTP/1.1 over TLS). */
function installHttp1Handlers(server: ListenerServer, holder: RuntimeHolder, name: string, lim: ListenerLimitsResolved, secure: boolean, refused: RefusalRecorder): void {
  server.on('clientError', (err: NodeJS.ErrnoException & { bytesParsed?: number }, socket: Socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable) { socket.destroy(); return; }
    // A response already begun on this connection (the handler refused the request before the parser
    // failed on its body, or a pipelined earlier exchange): a second head would corrupt the stream and
    // desync a front proxy. Let a complete one flush, cut an incomplete one (as Node's default does).
    const inflight = (socket as HttpSocket)._httpMessage;
    if (inflight != null && inflight.headersSent) {
      if (inflight.writableEnded) socket.end();
      else socket.destroy();
      return;
    }
    const header = holder.current.requestId.header;
    const id = randomUUID();
    const ip = socket.remoteAddress ?? '';
    switch (err.code) {
      case 'HPE_HEADER_OVERFLOW':
        refused('headers-too-large', ip, 431, id);
        return writeRawProblem(socket, 431, 'headers-too-large', `request head larger than ${lim.maxHeaderBytes} bytes`, id, header);
      case 'ERR_HTTP_REQUEST_TIMEOUT':
        refused('request-timeout', ip, 408, id);
        return writeRawProblem(socket, 408, 'request-timeout', 'the request was not received in time', id, header);
      default:
        // Every other parser error (invalid header, bad chunking, CL+TE, obs-fold...) is a malformed request.
        refused('bad-request', ip, 400, id);
        return writeRawProblem(socket, 400, 'bad-request', 'malformed HTTP request', id, header);
    }
  });

  server.on('upgrade', createUpgradeHandler(holder, name, secure));

  // Requests Node would otherwise answer itself, with a bare body (417) or by silently closing (CONNECT).
  server.on('checkExpectation', (_req: http.IncomingMessage, res: ServerResponse) => {
    sendProblem(res, 417, 'expectation-failed', 'only "Expect: 100-continue" is supported', randomUUID(), holder.current.requestId.header, undefined, true);
  });
  server.on('connect', (_req: http.IncomingMessage, socketOrRes: Socket | http2.Http2ServerResponse) => {
    // HTTP/2 CONNECT arrives as a request/response pair on the stream.
    if (socketOrRes instanceof http2.Http2ServerResponse) {
      sendProblem(socketOrRes as unknown as ServerResponse, 405, 'method-not-allowed', 'CONNECT is not allowed', randomUUID(), holder.current.requestId.header);
      return;
    }
    const socket = socketOrRes;
    socket.on('error', () => socket.destroy());
    writeRawProblem(socket, 405, 'method-not-allowed', 'CONNECT is not allowed', randomUUID(), holder.current.requestId.header);
  });
}

/**
 * HTTPS listener. With h2 (the default) an http2 secure server with allowHTTP1: ALPN picks h2 or
 * HTTP/1.1 per connection, and both reach the same request handler. Without h2, https.Server.
 */
async function startSecureListener(holder: RuntimeHolder, name: string, address: string, port: number, lim: ListenerLimitsResolved, tlsm: TlsManager, opts: ListenerOptions): Promise<Listener> {
  const logger = opts.logger ?? silentLogger;
  const handler = createRequestHandler(holder, name, true);
  // A client that connects and never finishes the handshake holds a socket: the head timeout bounds it too.
  const handshakeTimeout = Math.min(lim.headersTimeoutMs || 120_000, 120_000);
  let server: https.Server | Http2SecureServer;
  let h2: Http2SessionTracker | undefined;
  if (tlsm.http2) {
    const h2lim = resolveHttp2Limits(opts.http2);
    const s = http2.createSecureServer({
      ...tlsm.serverOptions,
      handshakeTimeout,
      allowHTTP1: true,
      settings: { maxConcurrentStreams: h2lim.maxConcurrentStreams, maxHeaderListSize: h2lim.maxHeaderListSize, enablePush: false },
      // Pseudo-headers (4) plus one excess field so the handler answers 431 itself, as on HTTP/1.
      maxHeaderListPairs: lim.maxHeaderCount + 5,
      Http2ServerResponse: GatewayHttp2Response,
    }) as unknown as Http2SecureServer;
    s.on('request', handler as unknown as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void);
    h2 = installHttp2Defences(s, { listener: name, logger, maxResetsPerSecond: h2lim.maxResetsPerSecond, idleTimeoutMs: lim.keepAliveTimeoutMs });
    // The HTTP/1.1 side of an HTTP/2 server is Node's HTTP/1 server code, but http2.createSecureServer does
    // not take its options: set them as properties (unset, keep-alive connections would never time out and
    // the head size would be Node's global default).
    const h1 = s as unknown as http.Server & { insecureHTTPParser: boolean; requireHostHeader: boolean; joinDuplicateHeaders: boolean; maxHeaderSize: number };
    h1.insecureHTTPParser = false;
    h1.requireHostHeader = false;
    h1.joinDuplicateHeaders = false;
    h1.maxHeaderSize = lim.maxHeaderBytes;
    server = s;
  } else {
    server = https.createServer({
      ...tlsm.serverOptions,
      handshakeTimeout,
      insecureHTTPParser: false,
      maxHeaderSize: lim.maxHeaderBytes,
      requestTimeout: lim.requestTimeoutMs,
      headersTimeout: Math.min(lim.headersTimeoutMs, lim.requestTimeoutMs || lim.headersTimeoutMs),
      keepAliveTimeout: lim.keepAliveTimeoutMs,
      connectionsCheckingInterval: 1000,
      requireHostHeader: false,
      joinDuplicateHeaders: false,
    }, handler);
  }
  applyHttp1Limits(server, lim);
  (server as unknown as { connectionsCheckingInterval: number }).connectionsCheckingInterval = 1000;
  tlsm.attach(server);

  const refusals = refusalRecorder(name, logger);
  const conns = installConnectionCaps(server, lim, refusals);
  const retirement = installRetirement(server);
  installHttp1Handlers(server, holder, name, lim, true, refusals);
  // Failed handshakes (protocol version, no shared cipher, bad client certificate, timeouts): nothing to answer.
  server.on('tlsClientError', (_err: Error, socket: TLSSocket) => { socket.destroy(); });
  // Every TLS connection, for the shutdown deadline (http2 servers have no closeAllConnections).
  const sockets = new Set<TLSSocket>();
  server.on('secureConnection', (socket: TLSSocket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  await listen(server, name, address, port);

  return {
    name,
    server,
    tls: tlsm,
    address: () => boundAddress(server, address, port),
    applyLimits: (next) => applyHttp1Limits(server, next),
    close(deadlineMs) {
      return new Promise<void>((resolve) => {
        const done = () => { clearTimeout(timer); retirement.done(); tlsm.detach(server); tlsm.close(); resolve(); };
        const timer = setTimeout(() => {
          h2?.destroyAll();
          for (const s of sockets) s.destroy();
          // raw TCP connections too: handshakes still in progress hold no TLS socket yet
          for (const s of conns) s.destroy();
          done();
        }, deadlineMs);
        timer.unref();
        // HTTP/1.1: each connection closes after its next response or a short idle grace. HTTP/2: GOAWAY, open streams finish.
        retirement.retire(deadlineMs, sockets, done);
        h2?.closeAll();
      });
    },
  };
}
