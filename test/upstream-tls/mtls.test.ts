// mTLS to upstreams: an upstream that requires client certificates accepts the configured one
// (plain or passphrase-protected key) and refuses the gateway without it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makePki } from '../helpers/certs.js';
import { get } from '../helpers/gateway.js';
import { tlsHarness, type TlsUpstream } from './helpers.js';

const pki = makePki();
const encClient = pki.issue({ name: 'client-encrypted', usage: 'client', cn: 'encrypted-client', passphrase: 'open sesame' });
const { upstream, gateway } = tlsHarness();

async function requiringClientCert(opts: { maxVersion?: 'TLSv1.2' } = {}): Promise<TlsUpstream> {
  return upstream(pki.server, { requestCert: true, rejectUnauthorized: true, ca: pki.ca.certPem, ...opts });
}

test('the configured client certificate is presented and accepted', async () => {
  const up = await requiringClientCert();
  const { base } = await gateway({ targets: [{ url: up.url }], tls: { ca: pki.ca.cert, cert: pki.client.cert, key: pki.client.key } });
  const r = await get(`${base}/x`);
  assert.equal(r.status, 200);
  assert.equal(up.requests[0]?.clientCn, 'client');
});

test('a passphrase-protected client key is decrypted with tls.passphrase', async () => {
  const up = await requiringClientCert();
  const { base } = await gateway({ targets: [{ url: up.url }], tls: { ca: pki.ca.cert, cert: encClient.cert, key: encClient.key, passphrase: encClient.passphrase } });
  const r = await get(`${base}/x`);
  assert.equal(r.status, 200);
  assert.equal(up.requests[0]?.clientCn, 'encrypted-client');
});

for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
  test(`without a client certificate the upstream refuses the handshake: 502 (${version})`, async () => {
    const up = await requiringClientCert(version === 'TLSv1.2' ? { maxVersion: 'TLSv1.2' } : {});
    const { base } = await gateway({ targets: [{ url: up.url }], tls: { ca: pki.ca.cert } });
    const r = await get(`${base}/x`);
    assert.equal(r.status, 502);
    // TLS 1.2 fails inside the handshake (upstream-tls-error); in TLS 1.3 the client's handshake is
    // complete before the server judges the certificate, so the gateway sees the connection closed.
    assert.match(r.body, version === 'TLSv1.2' ? /upstream-tls-error/ : /upstream-(tls-)?error/);
    assert.equal(up.requests.length, 0);
    assert.ok(up.clientErrors.length >= 1, 'the upstream saw a failed handshake');
  });
}

test('a client certificate from a CA the upstream does not trust is refused', async () => {
  const up = await requiringClientCert();
  const { base } = await gateway({ targets: [{ url: up.url }], tls: { ca: pki.ca.cert, cert: pki.clientOtherCa.cert, key: pki.clientOtherCa.key } });
  const r = await get(`${base}/x`);
  assert.equal(r.status, 502);
  assert.equal(up.requests.length, 0);
});
