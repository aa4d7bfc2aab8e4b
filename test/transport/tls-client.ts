// HTTPS and HTTP/2 clients for transport tests: one fresh TLS connection per call unless an agent or
// session is passed, an optional client certificate, and an outcome that is either a response or the
// connection error (a refused handshake is an expected result in some tests, not an exception).
import https from 'node:https';
import http2 from 'node:http2';
import type { CertFiles } from '../helpers/certs.js';

export interface TlsResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** set instead of status when the connection failed */
  error?: string;
  json<T = Record<string, unknown>>(): T;
}

export interface TlsRequest {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /** client certificate to present */
  cert?: CertFiles;
  /** CA that signed the gateway's server certificate */
  ca: string;
  servername?: string;
  agent?: https.Agent;
  timeoutMs?: number;
}

function result(status: number, headers: TlsResult['headers'], body: string, error?: string): TlsResult {
  return { status, headers, body, ...(error !== undefined ? { error } : {}), json: <T>() => JSON.parse(body) as T };
}

/** HTTPS (HTTP/1.1) request; resolves with the response or `{ status: 0, error: code }`. */
export function httpsRequest(port: number, path: string, o: TlsRequest): Promise<TlsResult> {
  return new Promise((resolve) => {
    const req = https.request({
      host: '127.0.0.1',
      port,
      path,
      method: o.method ?? 'GET',
      headers: o.headers,
      ca: o.ca,
      servername: o.servername ?? 'localhost',
      ...(o.cert !== undefined ? { cert: o.cert.certPem, key: o.cert.keyPem } : {}),
      agent: o.agent ?? false,
      timeout: o.timeoutMs ?? 5000,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(result(res.statusCode ?? 0, res.headers, Buffer.concat(chunks).toString('utf8'))));
      res.on('error', (e: NodeJS.ErrnoException) => resolve(result(0, {}, '', e.code ?? e.message)));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (e: NodeJS.ErrnoException) => resolve(result(0, {}, '', e.code ?? e.message)));
    req.end(o.body);
  });
}

/** One HTTP/2 session (ALPN h2); requests share its connection. Close it when done. */
export function h2Session(port: number, o: Omit<TlsRequest, 'method' | 'headers' | 'body' | 'agent'>): http2.ClientHttp2Session {
  const s = http2.connect(`https://127.0.0.1:${port}`, {
    ca: o.ca,
    servername: o.servername ?? 'localhost',
    ...(o.cert !== undefined ? { cert: o.cert.certPem, key: o.cert.keyPem } : {}),
  });
  s.on('error', () => { /* reported through the requests */ });
  return s;
}

export function h2Request(session: http2.ClientHttp2Session, path: string, headers: Record<string, string> = {}, timeoutMs = 5000): Promise<TlsResult> {
  return new Promise((resolve) => {
    let req: http2.ClientHttp2Stream;
    try {
      req = session.request({ ':path': path, ':method': 'GET', ...headers });
    } catch (e) {
      resolve(result(0, {}, '', (e as NodeJS.ErrnoException).code ?? String(e)));
      return;
    }
    const timer = setTimeout(() => { req.close(); resolve(result(0, {}, '', 'TIMEOUT')); }, timeoutMs);
    let status = 0;
    let hdrs: TlsResult['headers'] = {};
    const chunks: Buffer[] = [];
    req.on('response', (h) => { status = Number(h[':status']); hdrs = h as TlsResult['headers']; });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => { clearTimeout(timer); resolve(result(status, hdrs, Buffer.concat(chunks).toString('utf8'))); });
    req.on('error', (e: NodeJS.ErrnoException) => { clearTimeout(timer); resolve(result(0, {}, '', e.code ?? e.message)); });
  });
}
