// TLS 1.3 suite order: Mozilla's (AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305), and the client's
// preference among them is honoured (the server does not override it).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { makePki, type Pki } from '../helpers/certs.js';
import { DEFAULT_TLS13_SUITES } from '../../src/tls/policy.js';
import { startTlsGateway, sClient, type TlsGateway } from './helpers.js';

let pki: Pki;
let g: TlsGateway;
before(async () => { pki = makePki(); g = await startTlsGateway({ certificates: [{ cert: pki.server.cert, key: pki.server.key }] }); });
after(async () => { await g.close(); });

test('default TLS 1.3 suites in the modern Mozilla order', () => {
  assert.deepEqual(DEFAULT_TLS13_SUITES, ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256']);
});

for (const offer of [
  ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'],
  ['TLS_AES_256_GCM_SHA384', 'TLS_AES_128_GCM_SHA256'],
  ['TLS_CHACHA20_POLY1305_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_AES_128_GCM_SHA256'],
]) {
  test(`a client offering ${offer[0]} first gets it`, async () => {
    const s = await sClient(g.port, ['-tls1_3', '-ciphersuites', offer.join(':')]);
    assert.ok(s.connected, s.output);
    assert.equal(s.protocol, 'TLSv1.3');
    assert.equal(s.cipher, offer[0]);
  });
}
