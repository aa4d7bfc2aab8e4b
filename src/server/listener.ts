// One HTTP listener: node:http with Node's strict parser and the configured protocol limits, connection
// caps (per listener and per client IP), parser-error answers, and WebSocket upgrades.
import http, { type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ListenerLimitsResolved } from '../gateway/runtime.js';
import { createRequestHandler, createUpgradeHandler, type RuntimeHolder } from './handler.js';
import { sendProblem, writeRawProblem } from './problem.js';
import { randomUUID } from 'node:crypto';

export interface Listener {
  readonly name: string;
  readonly server: http.Server;
  address(): { address: string; port: number };
  /** stop accepting, let in-flight requests finish, close idle keep-alive connections */
  close(deadlineMs: number): Promise<void>;
}

export async function startListener(holder: RuntimeHolder, name: string, address: string, port: number, lim: ListenerLimitsResolved): Promise<Listener> {
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

  const perIp = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const ip = socket.remoteAddress ?? '';
    const n = (perIp.get(ip) ?? 0) + 1;
    if (n > lim.maxConnectionsPerIp) {
      socket.destroy();
      return;
    }
    perIp.set(ip, n);
    socket.once('close', () => {
      const left = (perIp.get(ip) ?? 1) - 1;
      if (left <= 0) perIp.delete(ip);
      else perIp.set(ip, left);
    });
  });

  server.on('clientError', (err: NodeJS.ErrnoException & { bytesParsed?: number }, socket: Socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable) { socket.destroy(); return; }
    // A response already begun on this connection (the handler refused the request before the parser
    // failed on its body, or a pipelined earlier exchange): a second head would corrupt the stream and
    // desync a front proxy. Let a complete one flush, cut an incomplete one (as Node's default does).
    const inflight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (inflight != null && inflight.headersSent) {
      if (inflight.writableEnded) socket.end();
      else socket.destroy();
      return;
    }
    const header = holder.current.requestId.header;
    const id = randomUUID();
    switch (err.code) {
      case 'HPE_HEADER_OVERFLOW':
        return writeRawProblem(socket, 431, 'headers-too-large', `request head larger than ${lim.maxHeaderBytes} bytes`, id, header);
      case 'ERR_HTTP_REQUEST_TIMEOUT':
        return writeRawProblem(socket, 408, 'request-timeout', 'the request was not received in time', id, header);
      default:
        // Every other parser error (invalid header, bad chunking, CL+TE, obs-fold...) is a malformed request.
        return writeRawProblem(socket, 400, 'bad-request', 'malformed HTTP request', id, header);
    }
  });

  server.on('upgrade', createUpgradeHandler(holder, name, false));

  // Requests Node would otherwise answer itself, with a bare body (417) or by silently closing (CONNECT).
  server.on('checkExpectation', (_req: http.IncomingMessage, res: ServerResponse) => {
    sendProblem(res, 417, 'expectation-failed', 'only "Expect: 100-continue" is supported', randomUUID(), holder.current.requestId.header, undefined, true);
  });
  server.on('connect', (_req: http.IncomingMessage, socket: Socket) => {
    socket.on('error', () => socket.destroy());
    writeRawProblem(socket, 405, 'method-not-allowed', 'CONNECT is not allowed', randomUUID(), holder.current.requestId.header);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => { server.off('error', reject); resolve(); });
  });

  return {
    name,
    server,
    address() {
      const a = server.address();
      if (a === null || typeof a === 'string') return { address, port };
      return { address: a.address, port: a.port };
    },
    close(deadlineMs) {
      return new Promise<void>((resolve) => {
        const timer = setTimeout(() => { server.closeAllConnections(); resolve(); }, deadlineMs);
        timer.unref();
        server.close(() => { clearTimeout(timer); resolve(); });
        server.closeIdleConnections();
        // Keep-alive connections that become idle after their last response are closed by Node once the server is closing.
      });
    },
  };
}
