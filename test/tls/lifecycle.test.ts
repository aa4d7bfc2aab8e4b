// HTTPS listeners beyond plain requests: WebSocket upgrades over TLS (the HTTP/1.1 side of the HTTP/2
// server), https.Server when h2 is off, per-IP connection caps before the handshake, and graceful shutdown
// of HTTP/2 sessions (GOAWAY, no waiting for the deadline).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { makePki, type Pki } from '../helpers/certs.js';
import { Gateway } from '../../src/gateway/gateway.js';
import { silentLogger } from '../../src/observability/logger.js';
import type { GatewayConfig, ListenerConfig } from '../../src/config/schema.js';
import { tryHandshake, httpsGet } from './helpers.js';
import { scaled } from '../helpers/wait.js';

let pki: Pki;
before(() => { pki = makePki(); });

async function withGateway(listener: Partial<ListenerConfig>, upstreamUrl: string, fn: (gw: Gateway, port: number) => Promise<void>): Promise<void> {
  const config: GatewayConfig = {
    listeners: [{ name: 'main', address: '127.0.0.1', port: 0, tls: { certificates: [{ cert: pki.server.cert, key: pki.server.key }] }, ...listener }],
    upstreams: { up: { targets: [{ url: upstreamUrl }] } },
    routes: [{ id: 'ws', match: { pathPrefix: '/ws' }, upstream: 'up', websocket: true }, { id: 'all', match: { pathPrefix: '/' }, upstream: 'up' }],
  };
  const gw = await Gateway.start(config, { logger: silentLogger, accessLog: false, status: false });
  try {
    await fn(gw, gw.address('main').port);
  } finally {
    await gw.close(200);
  }
}

async function wsUpstream(): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((_req, res) => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('plain'); });
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => ws.on('message', (d) => ws.send(`echo:${d.toString()}`))));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => { for (const c of wss.clients) c.terminate(); await new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); }); },
  };
}

async function wssEcho(port: number): Promise<string> {
  const ws = new WebSocket(`wss://localhost:${port}/ws`, { ca: pki.ca.certPem });
  try {
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    const reply = new Promise<string>((resolve) => ws.once('message', (d) => resolve(d.toString())));
    ws.send('hi');
    return await reply;
  } finally {
    ws.terminate();
  }
}

test('wss:// upgrades work on HTTPS listeners, with and without h2', async () => {
  const up = await wsUpstream();
  try {
    await withGateway({}, up.url, async (_gw, port) => { assert.equal(await wssEcho(port), 'echo:hi'); });
    await withGateway({ tls: { http2: false, certificates: [{ cert: pki.server.cert, key: pki.server.key }] } }, up.url, async (_gw, port) => {
      assert.equal(await wssEcho(port), 'echo:hi');
      // h2 not offered: ALPN falls back to http/1.1
      const h = await tryHandshake(port, { ALPNProtocols: ['h2', 'http/1.1'] });
      assert.ok(!('error' in h));
      assert.equal(h.alpn, 'http/1.1');
      assert.equal((await httpsGet(port, '/x', pki.ca.certPem)).status, 200);
    });
  } finally {
    await up.close();
  }
});

test('per-IP connection cap applies before the TLS handshake', async () => {
  const up = await wsUpstream();
  try {
    await withGateway({ limits: { maxConnectionsPerIp: 2 } }, up.url, async (_gw, port) => {
      const held = await Promise.all([0, 1].map(() => new Promise<net.Socket>((resolve) => { const s = net.connect(port, '127.0.0.1', () => resolve(s)); })));
      const third = await tryHandshake(port);
      assert.ok('error' in third, 'third connection must be refused');
      for (const s of held) s.destroy();
      await new Promise((r) => setImmediate(r));
    });
  } finally {
    await up.close();
  }
});

test('shutdown sends GOAWAY to idle HTTP/2 sessions and does not wait for the deadline', async () => {
  const up = await wsUpstream();
  const config: GatewayConfig = {
    listeners: [{ name: 'main', address: '127.0.0.1', port: 0, tls: { certificates: [{ cert: pki.server.cert, key: pki.server.key }] } }],
    upstreams: { up: { targets: [{ url: up.url }] } },
    routes: [{ id: 'all', match: { pathPrefix: '/' }, upstream: 'up' }],
  };
  const gw = await Gateway.start(config, { logger: silentLogger, accessLog: false, status: false });
  const client = http2.connect(`https://localhost:${gw.address('main').port}`, { ca: pki.ca.certPem });
  client.on('error', () => undefined);
  try {
    await new Promise<void>((resolve, reject) => { const r = client.request({ ':path': '/' }); r.resume(); r.on('end', resolve); r.on('error', reject); });
    const goaway = new Promise<number>((resolve) => client.once('goaway', (code: number) => resolve(code)));
    const t0 = performance.now();
    await gw.close(10_000);
    assert.ok(performance.now() - t0 < 2000, `close took ${Math.round(performance.now() - t0)} ms`);
    assert.equal(await goaway, http2.constants.NGHTTP2_NO_ERROR);
  } finally {
    client.destroy();
    await up.close();
  }
});

test('HTTP/1.1 on an h2 listener gets the listener limits (keep-alive timeout, head size); idle h2 sessions get GOAWAY', async () => {
  const up = await wsUpstream();
  try {
    await withGateway({ limits: { keepAliveTimeoutMs: 300, maxHeaderBytes: 2048 } }, up.url, async (_gw, port) => {
      // Keep-alive connection: answered, then closed by the server once idle for keepAliveTimeoutMs.
      const h = await (await import('./helpers.js')).handshake(port, { ALPNProtocols: ['http/1.1'] });
      const t0 = performance.now();
      const closed = new Promise<void>((resolve) => h.socket.once('close', () => resolve()));
      let reply = '';
      h.socket.on('data', (d: Buffer) => { reply += d.toString(); });
      h.socket.write('GET /k HTTP/1.1\r\nhost: localhost\r\n\r\n');
      await Promise.race([closed, new Promise((_, reject) => setTimeout(() => reject(new Error('keep-alive connection never closed')), scaled(30_000)).unref())]);
      assert.match(reply, /^HTTP\/1\.1 200 /);
      assert.ok(performance.now() - t0 >= 250, 'closed only after the idle timeout');

      // Head larger than maxHeaderBytes: 431 problem, as on plain listeners.
      const big = await (await import('./helpers.js')).handshake(port, { ALPNProtocols: ['http/1.1'] });
      const bigReply = await new Promise<string>((resolve) => {
        let r = '';
        big.socket.on('data', (d: Buffer) => { r += d.toString(); });
        big.socket.on('close', () => resolve(r));
        big.socket.write(`GET / HTTP/1.1\r\nhost: localhost\r\nx-big: ${'a'.repeat(4000)}\r\n\r\n`);
      });
      assert.match(bigReply, /^HTTP\/1\.1 431 /);

      // Idle HTTP/2 session: GOAWAY after keepAliveTimeoutMs.
      const client = http2.connect(`https://localhost:${port}`, { ca: pki.ca.certPem });
      client.on('error', () => undefined);
      try {
        await new Promise<void>((resolve, reject) => { const r = client.request({ ':path': '/' }); r.resume(); r.on('end', resolve); r.on('error', reject); });
        const code = await Promise.race([
          new Promise<number>((resolve) => client.once('goaway', (c: number) => resolve(c))),
          new Promise<string>((resolve) => setTimeout(() => resolve('no goaway'), scaled(30_000)).unref()),
        ]);
        assert.equal(code, http2.constants.NGHTTP2_NO_ERROR);
      } finally {
        client.destroy();
      }
    });
  } finally {
    await up.close();
  }
});
