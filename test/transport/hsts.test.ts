// HSTS on TLS listeners: on every response (proxied, direct, problem; HTTP/1.1 and HTTP/2), the
// listener's value replacing an upstream's own; configurable; never on plain HTTP. Also the default
// plaintext mode when TLS listeners exist: redirect, to names read from the certificate.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Gateway } from '../../src/gateway/gateway.js';
import { silentLogger } from '../../src/observability/logger.js';
import type { ListenerConfig } from '../../src/config/schema.js';
import { makePki } from '../helpers/certs.js';
import { startScripted } from '../helpers/servers.js';
import { get, raw, statusOf } from '../helpers/gateway.js';
import { h2Request, h2Session, httpsRequest } from './tls-client.js';

const pki = makePki();
const ca = pki.ca.certPem;
const up = await startScripted('a', (req, res, rec) => {
  if (req.url === '/boom') { res.writeHead(500, { 'strict-transport-security': 'max-age=1' }); res.end('trace'); return; }
  res.writeHead(200, { 'content-type': 'application/json', 'strict-transport-security': 'max-age=5; preload' });
  res.end(JSON.stringify(rec));
});
const tls = { certificates: [{ cert: pki.server.cert, key: pki.server.key }] };
const tlsListener = (name: string, extra: Partial<ListenerConfig> = {}): ListenerConfig => ({ name, address: '127.0.0.1', port: 0, tls, ...extra });
const gw = await Gateway.start({
  listeners: [
    tlsListener('tls'),
    tlsListener('custom', { hsts: { maxAge: 600, includeSubDomains: false } }),
    tlsListener('preload', { hsts: { maxAge: 63072000, preload: true } }),
    tlsListener('off', { hsts: false }),
    { name: 'plain', address: '127.0.0.1', port: 0 }, // no plaintext block + TLS listeners = redirect
  ],
  upstreams: { a: { targets: [{ url: up.url }] } },
  routes: [
    { id: 'direct', match: { path: '/direct' }, respond: { status: 200, body: 'ok' } },
    { id: 'proxy', match: { pathPrefix: '/proxy' }, upstream: 'a' },
    { id: 'boom', match: { path: '/boom' }, upstream: 'a' },
  ],
}, { logger: silentLogger, accessLog: false, status: false });
after(async () => { await gw.close(0); await up.close(); });

const port = (name: string): number => gw.address(name).port;
const DEFAULT = 'max-age=31536000; includeSubDomains';

test('HTTPS: every response carries the listener HSTS, exactly once', async () => {
  for (const path of ['/direct', '/proxy/x', '/boom', '/nope', '/%2e%2e/x']) {
    const r = await httpsRequest(port('tls'), path, { ca });
    assert.equal(r.error, undefined, `${path}: ${r.error}`);
    assert.equal(r.headers['strict-transport-security'], DEFAULT, path);
  }
  const head = await httpsRequest(port('tls'), '/direct', { ca, method: 'HEAD' });
  assert.equal(head.headers['strict-transport-security'], DEFAULT);
});

test("HTTPS: an upstream's own Strict-Transport-Security is replaced", async () => {
  const r = await httpsRequest(port('tls'), '/proxy/y', { ca });
  assert.equal(r.status, 200);
  assert.equal(r.headers['strict-transport-security'], DEFAULT);
  assert.doesNotMatch(JSON.stringify(r.headers), /max-age=5/);
});

test('HSTS is configurable per listener, and can be turned off', async () => {
  assert.equal((await httpsRequest(port('custom'), '/direct', { ca })).headers['strict-transport-security'], 'max-age=600');
  assert.equal((await httpsRequest(port('preload'), '/proxy', { ca })).headers['strict-transport-security'], 'max-age=63072000; includeSubDomains; preload');
  const off = await httpsRequest(port('off'), '/proxy', { ca });
  assert.equal(off.status, 200);
  assert.equal(off.headers['strict-transport-security'], undefined, 'off: neither ours nor the upstream one');
});

test('HTTP/2: HSTS on proxied, direct and problem responses', async () => {
  const s = h2Session(port('tls'), { ca });
  try {
    for (const path of ['/direct', '/proxy/h2', '/nope']) {
      const r = await h2Request(s, path);
      assert.equal(r.error, undefined, `${path}: ${r.error}`);
      assert.equal(r.headers['strict-transport-security'], DEFAULT, path);
    }
  } finally {
    s.close();
  }
});

test('plain listener next to TLS listeners: redirects by default, to names of the certificate, no HSTS', async () => {
  const before = up.seen.length;
  const r = await get(`http://127.0.0.1:${port('plain')}/proxy/a/../b?q=1`, { headers: { host: 'portcullis.test' } });
  assert.equal(r.status, 308);
  assert.equal(r.headers.location, 'https://portcullis.test/proxy/b?q=1');
  assert.equal(r.headers['strict-transport-security'], undefined);
  const evil = await raw(port('plain'), 'GET / HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n');
  assert.equal(statusOf(evil), 400);
  assert.doesNotMatch(evil, /\r\nlocation:/i);
  assert.equal(up.seen.length, before, 'no upstream contacted');
});
