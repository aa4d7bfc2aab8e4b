// The cipher policy (OpenSSL cipher strings evaluated into explicit suites and checked) and the
// `validate` file checks (checkTlsFiles).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { evaluateCipherString, resolveCiphers, isModernSuite, DEFAULT_TLS12_SUITES } from '../../src/tls/policy.js';
import { checkTlsFiles } from '../../src/tls/check.js';
import { makePki, type Pki } from '../helpers/certs.js';

let pki: Pki;
before(() => { pki = makePki(); });

const openssl = (s: string): string[] =>
  execFileSync('openssl', ['ciphers', `${s}:@SECLEVEL=0`], { encoding: 'utf8' }).trim().split(':').filter((n) => !n.startsWith('TLS_'));

test('cipher strings evaluate to the same TLS 1.2 suites as OpenSSL', () => {
  for (const s of ['ECDHE+AESGCM', 'ECDHE+AESGCM:ECDHE+CHACHA20', 'EECDH+AESGCM:EDH+AESGCM', 'HIGH:!aNULL:!kRSA:!SHA1:!SHA256:!SHA384:!DHE:!PSK:!ARIA:!AESCCM',
    'ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384', 'kECDHE+aECDSA+AES256', 'ALL:-AES:+CHACHA20']) {
    assert.deepEqual(new Set(evaluateCipherString(s).tls12), new Set(openssl(s)), s);
  }
});

test('the policy accepts only ECDHE + AES-GCM/ChaCha20 (TLS 1.2) and AEAD TLS 1.3 suites', () => {
  for (const n of DEFAULT_TLS12_SUITES) assert.ok(isModernSuite(n), n);
  for (const n of ['ECDHE-RSA-AES128-SHA', 'ECDHE-RSA-AES128-SHA256', 'AES128-GCM-SHA256', 'DHE-RSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES128-CCM8', 'AECDH-AES128-SHA', 'ECDHE-ARIA128-GCM-SHA256', 'TLS_AES_128_CCM_8_SHA256']) {
    assert.equal(isModernSuite(n), false, n);
  }
  assert.deepEqual(resolveCiphers('ECDHE+AESGCM', false).tls12.sort(), ['ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES256-GCM-SHA384']);
  // exclusions can only remove; TLS 1.3 names pass through; the defaults fill TLS 1.3 when none are named
  const r = resolveCiphers('ECDHE+CHACHA20:!aRSA', false);
  assert.deepEqual(r.tls12, ['ECDHE-ECDSA-CHACHA20-POLY1305']);
  assert.match(r.ciphers, /^TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:ECDHE-ECDSA-CHACHA20-POLY1305$/);
  assert.equal(resolveCiphers('TLS_AES_128_GCM_SHA256', false).ciphers, 'TLS_AES_128_GCM_SHA256');
  assert.throws(() => resolveCiphers('ECDHE+AESGCM:AES128-SHA', false), /without forward secrecy or AEAD: AES128-SHA/);
  assert.throws(() => resolveCiphers('DEFAULT', false), /without forward secrecy or AEAD/);
  assert.throws(() => resolveCiphers('ECDHE+AESGCM:!ECDHE', false), /selects no cipher suite/);
  assert.throws(() => resolveCiphers('ECDHE+AESGCMX', false), /unknown cipher suite or keyword "AESGCMX"/);
  assert.deepEqual(resolveCiphers('AES128-SHA', true).insecure, ['AES128-SHA']);
});

test('checkTlsFiles reports every problem with its path', () => {
  const base = ['listeners', 2, 'tls'];
  const r = checkTlsFiles({
    minVersion: 'TLSv1.2',
    ciphers: 'ECDHE+AESGCM:AES256-SHA',
    certificates: [
      { cert: pki.server.cert, key: pki.server.key, serverNames: ['localhost', 'not-in-cert.test'] },
      { cert: pki.serverExpired.cert, key: pki.serverExpired.key },
      { cert: pki.other.cert, key: pki.server.key },
      { cert: pki.serverEncrypted.cert, key: pki.serverEncrypted.key, passphrase: 'nope' },
      { cert: '/nonexistent/cert.pem', key: pki.server.key },
    ],
    clientCertificate: { mode: 'require', ca: pki.ca.cert },
  }, '/', base);
  const at = (xs: typeof r.errors) => xs.map((x) => `${x.path.join('.')}: ${x.message.replaceAll(pki.dir, 'PKI')}`);
  assert.deepEqual(at(r.errors), [
    'listeners.2.tls.ciphers: selects cipher suites without forward secrecy or AEAD: AES256-SHA. Only ECDHE with AES-GCM or ChaCha20-Poly1305 is accepted (e.g. "ECDHE+AESGCM:ECDHE+CHACHA20"), unless allowInsecureCiphers is set',
    'listeners.2.tls.certificates.1.cert: PKI/server-expired.pem: certificate expired on 2020-02-01T00:00:00.000Z',
    'listeners.2.tls.certificates.2.key: PKI/server-key.pem does not match the certificate in PKI/other.pem',
    'listeners.2.tls.certificates.3.key: PKI/server-encrypted-key.pem: cannot decrypt the key: wrong passphrase',
    'listeners.2.tls.certificates.4.cert: cannot read /nonexistent/cert.pem: no such file',
  ]);
  assert.deepEqual(at(r.warnings), [
    'listeners.2.tls.certificates.0.serverNames.1: "not-in-cert.test" is not a name in the certificate (localhost, portcullis.test): clients will reject it',
  ]);

  const soon = pki.issue({ name: 'check-soon', days: 3 });
  const w = checkTlsFiles({ certificates: [{ cert: soon.cert, key: soon.key }], ciphers: 'AES128-SHA', allowInsecureCiphers: true, minVersion: 'TLSv1.2' }, '/');
  assert.deepEqual(w.errors, []);
  assert.deepEqual(w.warnings.map((x) => x.path.join('.')), ['ciphers', 'certificates.0.cert']);
  assert.match(w.warnings[1]!.message, /expires on .* \(in 2 days\)/);
});

test('two certificates with the same key type for one name are refused', () => {
  const twin = pki.issue({ name: 'twin' });
  const r = checkTlsFiles({ certificates: [{ cert: pki.server.cert, key: pki.server.key }, { cert: twin.cert, key: twin.key }] }, '/');
  assert.equal(r.errors.length, 1);
  assert.match(r.errors[0]!.message, /certificates\[0\] and certificates\[1\] both serve "localhost", "portcullis.test" with a EC key/);
});
