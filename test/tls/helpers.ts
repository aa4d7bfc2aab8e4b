// Helpers for TLS listener tests: a gateway with an HTTPS listener in front of an echo upstream, raw
// handshakes with node:tls, `openssl s_client` runs, and a logger that records lines.
import tls from 'node:tls';
import https from 'node:https';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Gateway } from '../../src/gateway/gateway.js';
import type { GatewayConfig, ListenerConfig, ListenerTlsConfig } from '../../src/config/schema.js';
import type { Logger } from '../../src/observability/logger.js';
import { silentLogger } from '../../src/observability/logger.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { firstPem, fingerprint256 } from '../helpers/certs.js';
import { spawnTracked } from '../helpers/process.js';
import { scaled } from '../helpers/wait.js';

export interface TlsGateway {
  gw: Gateway;
  port: number;
  upstream: TestUpstream;
  close(): Promise<void>;
}

export async function startTlsGateway(tlsCfg: ListenerTlsConfig, opts: { listener?: Partial<ListenerConfig>; logger?: Logger; baseDir?: string } = {}): Promise<TlsGateway> {
  const upstream = await startUpstream('tls-up');
  const config: GatewayConfig = {
    listeners: [{ name: 'main', address: '127.0.0.1', port: 0, tls: tlsCfg, ...opts.listener }],
    upstreams: { up: { targets: [{ url: upstream.url }] } },
    routes: [{ id: 'all', match: { pathPrefix: '/' }, upstream: 'up' }],
  };
  let gw: Gateway;
  try {
    gw = await Gateway.start(config, { logger: opts.logger ?? silentLogger, accessLog: false, status: false, ...(opts.baseDir !== undefined ? { baseDir: opts.baseDir } : {}) });
  } catch (err) {
    await upstream.close();
    throw err;
  }
  const port = gw.address('main').port;
  return { gw, port, upstream, close: async () => { await gw.close(1000); await upstream.close(); } };
}

export interface Handshake {
  protocol: string | null;
  cipher: string;
  alpn: string | false | null;
  fingerprint256: string;
  subject: string;
  keyType: string;
  socket: tls.TLSSocket;
}

/** One TLS handshake; resolves with what was negotiated (socket left open: destroy it) or rejects with the error. */
export function handshake(port: number, opts: tls.ConnectionOptions = {}): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false, ...opts });
    const timer = setTimeout(() => { socket.destroy(); reject(new Error('handshake timed out')); }, 5000);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      const cert = socket.getPeerX509Certificate();
      resolve({
        protocol: socket.getProtocol(),
        cipher: socket.getCipher().name,
        alpn: socket.alpnProtocol,
        fingerprint256: cert?.fingerprint256 ?? '',
        subject: cert?.subject ?? '',
        keyType: cert?.publicKey.asymmetricKeyType ?? '',
        socket,
      });
    });
    socket.once('error', (err) => { clearTimeout(timer); socket.destroy(); reject(err); });
  });
}

/** Handshake, then close; the error (code + message) instead of a rejection. */
export async function tryHandshake(port: number, opts: tls.ConnectionOptions = {}): Promise<Omit<Handshake, 'socket'> | { error: string }> {
  try {
    const { socket, ...rest } = await handshake(port, opts);
    socket.destroy();
    return rest;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { error: `${e.code ?? ''} ${e.message}` };
  }
}

export interface SClientResult {
  connected: boolean;
  protocol: string | undefined;
  cipher: string | undefined;
  subject: string | undefined;
  fingerprint256: string | undefined;
  keyBits: number | undefined;
  alpn: string | undefined;
  output: string;
}

/** `openssl s_client -connect 127.0.0.1:PORT -servername NAME ...`, stdin closed, bounded by a timeout. */
export function sClient(port: number, args: string[], servername = 'localhost'): Promise<SClientResult> {
  return new Promise((resolve, reject) => {
    const child = spawnTracked('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, ...(servername ? ['-servername', servername] : []), '-showcerts', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (d: Buffer) => { output += d.toString(); });
    child.stderr!.on('data', (d: Buffer) => { output += d.toString(); });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`s_client timed out:\n${output}`)); }, scaled(60_000));
    child.on('error', (err) => { clearTimeout(timer); reject(err); });
    child.on('close', () => {
      clearTimeout(timer);
      const m = /New, (TLSv[\d.]+|\(NONE\)), Cipher is (\S+)/.exec(output);
      const connected = m !== null && m[2] !== '(NONE)';
      let fp: string | undefined;
      try { fp = connected ? fingerprint256(firstPem(output)) : undefined; } catch { fp = undefined; }
      resolve({
        connected,
        protocol: connected ? m![1] : undefined,
        cipher: connected ? m![2] : undefined,
        subject: /^subject=(.*)$/m.exec(output)?.[1],
        fingerprint256: fp,
        keyBits: Number(/Server public key is (\d+) bit/.exec(output)?.[1] ?? NaN) || undefined,
        alpn: /ALPN protocol: (\S+)/.exec(output)?.[1],
        output,
      });
    });
  });
}

/** A pino logger that keeps every line as an object. */
export function memoryLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const dest = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, dest), lines };
}

/** One HTTPS/1.1 GET on a fresh connection (ALPN http/1.1). */
export function httpsGet(port: number, path: string, ca: string, servername = 'localhost'): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string; alpn: string | false | null }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, path, servername, ca, agent: false, ALPNProtocols: ['http/1.1'], timeout: 5000 } as https.RequestOptions, (res) => {
      const alpn = (res.socket as tls.TLSSocket).alpnProtocol;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString(), alpn }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}
