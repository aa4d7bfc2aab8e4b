// https upstreams on 127.0.0.1 for upstream-TLS tests: they record what each handshake and request
// carried (SNI, client certificate) and count handshakes that failed on their side.
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { after } from 'node:test';
import type { GatewayConfig, UpstreamConfig } from '../../src/config/schema.js';
import { startGateway } from '../helpers/gateway.js';
import { captureLogger } from '../helpers/servers.js';
import type { SecurityEvent } from '../../src/observability/security-events.js';
import type { CertFiles } from '../helpers/certs.js';

export interface TlsRequest { url: string; servername: string | false | null | undefined; clientCn: string | undefined; protocol: string | null }

export interface TlsUpstream {
  /** https://127.0.0.1:PORT */
  url: string;
  port: number;
  /** requests that reached the HTTP layer */
  requests: TlsRequest[];
  /** handshakes that completed on the server side */
  handshakes: number;
  /** handshakes the server saw fail (client refused our certificate, no client certificate, ...) */
  clientErrors: string[];
  close(): Promise<void>;
}

export async function startTlsUpstream(cert: CertFiles, opts: https.ServerOptions = {}): Promise<TlsUpstream> {
  const up: TlsUpstream = {
    url: '', port: 0, requests: [], handshakes: 0, clientErrors: [],
    close: async () => {},
  };
  const server = https.createServer({ cert: cert.certPem, key: cert.keyPem, ...opts }, (req, res) => {
    const s = req.socket as TLSSocket;
    const peer = s.getPeerCertificate();
    const cn = peer && typeof peer.subject?.CN === 'string' ? peer.subject.CN : undefined;
    up.requests.push({ url: req.url ?? '', servername: s.servername, clientCn: cn, protocol: s.getProtocol() });
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('secure hello');
    });
  });
  server.on('secureConnection', () => { up.handshakes++; });
  server.on('tlsClientError', (err: NodeJS.ErrnoException) => { up.clientErrors.push(err.code ?? err.message); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  up.port = (server.address() as AddressInfo).port;
  up.url = `https://127.0.0.1:${up.port}`;
  up.close = () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); });
  return up;
}

/** One route `/` → upstream `api` with the given upstream config; short timeouts, no retries unless given. */
export function tlsConfig(upstream: NonNullable<GatewayConfig['upstreams']>[string]): GatewayConfig {
  return {
    listeners: [{ name: 'main', address: '127.0.0.1', port: 0 }],
    upstreams: { api: { timeouts: { connectMs: 3000, firstByteMs: 3000, totalMs: 5000 }, retries: { attempts: 0 }, ...upstream } },
    routes: [{ id: 'api', match: { pathPrefix: '/' }, upstream: 'api' }],
  };
}

/**
 * Per-file harness: upstreams and gateways started through it are closed after the file's tests, and
 * each gateway logs into a capture the test can inspect.
 */
export function tlsHarness() {
  const ups: TlsUpstream[] = [];
  const closers: (() => Promise<void>)[] = [];
  after(async () => {
    await Promise.all(closers.map((c) => c()));
    await Promise.all(ups.map((u) => u.close()));
  });
  return {
    /** also close this after the file's tests */
    defer(close: () => Promise<void>): void { closers.push(close); },
    async upstream(...args: Parameters<typeof startTlsUpstream>): Promise<TlsUpstream> {
      const u = await startTlsUpstream(...args);
      ups.push(u);
      return u;
    },
    async gateway(u: Partial<UpstreamConfig> & Pick<UpstreamConfig, 'targets'>) {
      const log = captureLogger();
      const { gw, base } = await startGateway(tlsConfig(u), { logger: log.logger });
      closers.push(() => gw.close(200));
      const events: SecurityEvent[] = [];
      gw.events.subscribe((e) => events.push(e));
      return { base, log, events };
    },
  };
}
