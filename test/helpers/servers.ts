// Scriptable upstreams for proxy tests: an HTTP server whose behaviour can be swapped while a test runs
// (healthy/failing, slow, streaming, holding a request open), a raw TCP upstream for responses no
// well-behaved server would write, a log capture for gateway events, and a raw-socket HTTP client.
import http from 'node:http';
import net from 'node:net';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';

export interface Recorded {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  bodyLength: number;
  bodySha256: string;
}

export type ScriptHandler = (req: http.IncomingMessage, res: http.ServerResponse, rec: Recorded) => void;

export interface ScriptedUpstream {
  name: string;
  url: string;
  port: number;
  server: http.Server;
  /** every request, in arrival order (recorded once its body has been read) */
  seen: Recorded[];
  /** requests whose head has arrived (counted before the body is read) */
  arrived: number;
  /** replace to change behaviour mid-test */
  handler: ScriptHandler;
  /** seen, minus health probes */
  traffic(): Recorded[];
  close(): Promise<void>;
}

/** Default behaviour: 200 with a JSON echo of what arrived. */
export function echo(name: string): ScriptHandler {
  return (_req, res, rec) => {
    const body = JSON.stringify({ upstream: name, ...rec });
    res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': name });
    res.end(body);
  };
}

/** Answer `status` with a small JSON body (failing target). */
export function statusHandler(status: number, name = 'x'): ScriptHandler {
  return (_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json', 'x-upstream': name });
    res.end(JSON.stringify({ upstream: name, status }));
  };
}

export async function startScripted(name: string, handler?: ScriptHandler): Promise<ScriptedUpstream> {
  const up = {
    name,
    seen: [] as Recorded[],
    arrived: 0,
    handler: handler ?? echo(name),
  } as ScriptedUpstream;
  const server = http.createServer((req, res) => {
    up.arrived++;
    const hash = createHash('sha256');
    let len = 0;
    req.on('data', (c: Buffer) => { hash.update(c); len += c.length; });
    req.on('end', () => {
      const rec: Recorded = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        bodyLength: len,
        bodySha256: hash.digest('hex'),
      };
      up.seen.push(rec);
      up.handler(req, res, rec);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  up.server = server;
  up.port = port;
  up.url = `http://127.0.0.1:${port}`;
  up.traffic = () => up.seen.filter((r) => r.headers['user-agent'] !== 'portcullis-health-check');
  up.close = () => new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); });
  return up;
}

/** A port nothing listens on (bound then closed). */
export async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/**
 * A TCP upstream that reads one request head and lets `respond` write whatever bytes it likes.
 * Counts connections and request heads.
 */
export async function startRawUpstream(respond: (head: string, socket: net.Socket) => void): Promise<{ url: string; heads: string[]; close(): Promise<void> }> {
  const heads: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let buf = '';
    const onData = (c: Buffer) => {
      buf += c.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.off('data', onData);
      const head = buf.slice(0, end);
      heads.push(head);
      respond(head, socket);
    };
    socket.on('data', onData);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    heads,
    close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
}

/** A pino logger that keeps every line, for waiting on gateway events (ejections, health changes). */
export function captureLogger(): { logger: Logger; lines: Record<string, unknown>[]; events(type: string): Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const logger = pino({ level: 'info' }, sink);
  return {
    logger,
    lines,
    events: (type) => lines.filter((l) => (l.event as { type?: string } | undefined)?.type === type),
  };
}

export interface RawResponse { status: number; headers: Record<string, string[]>; body: Buffer; head: string }

/** Parses one HTTP/1.1 response (Content-Length or close-delimited; no chunked) from raw bytes. */
export function parseRawResponse(raw: Buffer): RawResponse {
  const end = raw.indexOf('\r\n\r\n');
  if (end === -1) throw new Error(`no complete response head in ${JSON.stringify(raw.toString('latin1').slice(0, 200))}`);
  const head = raw.subarray(0, end).toString('latin1');
  const lines = head.split('\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0);
  const headers: Record<string, string[]> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    const k = l.slice(0, i).trim().toLowerCase();
    (headers[k] ??= []).push(l.slice(i + 1).trim());
  }
  let body = raw.subarray(end + 4);
  const cl = headers['content-length']?.[0];
  if (cl !== undefined) body = body.subarray(0, Number(cl));
  return { status, headers, body, head };
}

/**
 * Sends one request with `Connection: close` over a raw socket (so paths like `/%2e%2e/x` or hop-by-hop
 * headers reach the gateway exactly as written) and resolves with the parsed response.
 */
export function rawRequest(port: number, method: string, target: string, headers: [string, string][] = [], body = ''): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let req = `${method} ${target} HTTP/1.1\r\nHost: gw.test\r\n`;
    for (const [k, v] of headers) req += `${k}: ${v}\r\n`;
    if (!headers.some(([k]) => k.toLowerCase() === 'connection')) req += 'Connection: close\r\n';
    if (body !== '') req += `Content-Length: ${Buffer.byteLength(body)}\r\n`;
    req += '\r\n' + body;
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`no response to ${method} ${target}`)); }, 5000);
    s.on('connect', () => s.write(req));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('close', () => {
      clearTimeout(timer);
      try { resolve(parseRawResponse(Buffer.concat(chunks))); } catch (e) { reject(e as Error); }
    });
    s.on('error', (e: NodeJS.ErrnoException) => { if (e.code !== 'ECONNRESET') { clearTimeout(timer); reject(e); } });
  });
}
