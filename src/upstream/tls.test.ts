import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { makePki } from '../../test/helpers/certs.js';
import type { UpstreamEvent } from './types.js';
import {
  TLS_PIN_MISMATCH, UpstreamTlsConfigError, compileUpstreamTls, isTlsErrorCode, isTlsVerifyErrorCode, spkiPin,
} from './tls.js';

const pki = makePki();

test('spkiPin equals the openssl pipeline documented in docs/upstream-tls.md', () => {
  for (const c of [pki.server, pki.serverRsa]) {
    const viaOpenssl = execFileSync('sh', ['-c',
      'openssl x509 -in "$1" -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64', 'sh', c.cert,
    ], { timeout: 10_000 }).toString().trim();
    assert.equal(spkiPin(c.certPem), viaOpenssl);
    assert.match(viaOpenssl, /^[A-Za-z0-9+/]{43}=$/);
  }
  assert.notEqual(spkiPin(pki.server.certPem), spkiPin(pki.serverRsa.certPem));
});

test('error code classification', () => {
  for (const c of ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID', 'SELF_SIGNED_CERT_IN_CHAIN']) {
    assert.ok(isTlsVerifyErrorCode(c), c);
    assert.ok(isTlsErrorCode(c), c);
  }
  assert.ok(isTlsErrorCode(TLS_PIN_MISMATCH));
  assert.ok(!isTlsVerifyErrorCode(TLS_PIN_MISMATCH));
  assert.ok(isTlsErrorCode('ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION'));
  assert.ok(isTlsErrorCode('ERR_SSL_WRONG_VERSION_NUMBER'));
  for (const c of ['ECONNRESET', 'ECONNREFUSED', 'UND_ERR_SOCKET', '']) assert.ok(!isTlsErrorCode(c), c);
});

test('defaults: verification on, no pins', () => {
  const t = compileUpstreamTls('api', undefined);
  assert.equal(t.verify, true);
  assert.equal(t.pins.size, 0);
  assert.equal(compileUpstreamTls('api', { insecureSkipVerify: true }).verify, false);
});

test('file errors name the field and the resolved file', () => {
  assert.throws(() => compileUpstreamTls('api', { ca: 'missing.pem' }, { baseDir: '/nonexistent-dir' }), (e: unknown) => {
    assert.ok(e instanceof UpstreamTlsConfigError);
    assert.equal(e.path, 'upstreams.api.tls.ca');
    assert.match(e.message, /^upstreams\.api\.tls\.ca: cannot read CA bundle "\/nonexistent-dir\/missing\.pem": ENOENT$/);
    return true;
  });
  assert.throws(() => compileUpstreamTls('api', { cert: pki.client.cert }), /upstreams\.api\.tls\.key: a client certificate needs both/);
  assert.throws(() => compileUpstreamTls('api', { ca: pki.client.key }), /upstreams\.api\.tls\.ca: .* contains no PEM certificate/);
});

// ---------------------------------------------------------------- connectors, driven by an undici Pool

interface Srv { url: string; resumed: number; handshakes: number; close(): Promise<void> }
const servers: Srv[] = [];
after(() => Promise.all(servers.map((s) => s.close())));

/** Closes every connection after one response, so each request needs a new handshake. */
async function oneShotServer(cert: { certPem: string; keyPem: string }): Promise<Srv> {
  const s: Srv = { url: '', resumed: 0, handshakes: 0, close: async () => {} };
  const server = https.createServer({ cert: cert.certPem, key: cert.keyPem }, (_req, res) => {
    res.writeHead(200, { connection: 'close' });
    res.end('ok');
  });
  server.on('secureConnection', (sock: TLSSocket) => { s.handshakes++; if (sock.isSessionReused()) s.resumed++; });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  s.url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  s.close = () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); });
  servers.push(s);
  return s;
}

async function requestCodes(pool: Pool, n: number): Promise<(number | string)[]> {
  const out: (number | string)[] = [];
  for (let i = 0; i < n; i++) {
    try {
      const r = await pool.request({ method: 'GET', path: '/' });
      await r.body.text();
      out.push(r.statusCode);
      // let the 'session' ticket arrive before the next connection
      await new Promise((r2) => setTimeout(r2, 20));
    } catch (e) {
      out.push((e as { code?: string }).code ?? String(e));
    }
  }
  return out;
}

test('verified + pinned: new connections resume sessions from pinned handshakes', async () => {
  const srv = await oneShotServer(pki.server);
  const t = compileUpstreamTls('api', { ca: pki.ca.cert, pins: [spkiPin(pki.server.certPem)] });
  const pool = new Pool(srv.url, { connect: t.connector(srv.url, 2000) });
  try {
    assert.deepEqual(await requestCodes(pool, 3), [200, 200, 200]);
    assert.equal(srv.handshakes, 3);
    assert.ok(srv.resumed >= 1, `resumed ${srv.resumed}`);
  } finally { await pool.destroy(); }
});

test('unverified + pinned: every connection is a full handshake and is checked', async () => {
  const srv = await oneShotServer(pki.serverOtherCa);
  const events: UpstreamEvent[] = [];
  const bad = compileUpstreamTls('api', { insecureSkipVerify: true, pins: [spkiPin(pki.server.certPem)] }, { onEvent: (e) => events.push(e) });
  const badPool = new Pool(srv.url, { connect: bad.connector(srv.url, 2000) });
  try {
    assert.deepEqual(await requestCodes(badPool, 3), [TLS_PIN_MISMATCH, TLS_PIN_MISMATCH, TLS_PIN_MISMATCH]);
  } finally { await badPool.destroy(); }
  assert.deepEqual(events, Array.from({ length: 3 }, () => ({ type: 'tls-pin-mismatch', upstream: 'api', target: srv.url, observed: spkiPin(pki.serverOtherCa.certPem) })));

  const good = compileUpstreamTls('api', { insecureSkipVerify: true, pins: [spkiPin(pki.serverOtherCa.certPem)] });
  const goodPool = new Pool(srv.url, { connect: good.connector(srv.url, 2000) });
  const before = srv.resumed;
  try {
    assert.deepEqual(await requestCodes(goodPool, 3), [200, 200, 200]);
    assert.equal(srv.resumed, before, 'no session resumption when the pin is checked after the handshake');
  } finally { await goodPool.destroy(); }
});

test('a throwing event sink does not change the outcome', async () => {
  const srv = await oneShotServer(pki.server);
  const t = compileUpstreamTls('api', {}, { onEvent: () => { throw new Error('logger broke'); } });
  const pool = new Pool(srv.url, { connect: t.connector(srv.url, 2000) });
  try {
    assert.deepEqual(await requestCodes(pool, 1), ['UNABLE_TO_VERIFY_LEAF_SIGNATURE']);
  } finally { await pool.destroy(); }
});
