// Per-route mTLS on a listener that requests client certificates (mode request) and on one that requires
// them at the handshake (mode require): refusals, allowlists, identity forwarding, header stripping,
// HTTP/1.1 and HTTP/2, connection reuse.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { Gateway } from '../../src/gateway/gateway.js';
import { makePki, fingerprint256 } from '../helpers/certs.js';
import { captureLogger, startScripted, type Recorded } from '../helpers/servers.js';
import { get } from '../helpers/gateway.js';
import type { SecurityEvent } from '../../src/observability/security-events.js';
import { h2Request, h2Session, httpsRequest, type TlsRequest } from './tls-client.js';

const pki = makePki();
const ca = pki.ca.certPem;
const clientSan = pki.issue({ name: 'client-san', usage: 'client', cn: 'san-client', names: ['svc.portcullis.test'] });
const clientFp = fingerprint256(pki.client.certPem);

const up = await startScripted('a');
const log = captureLogger();
const certs = [{ cert: pki.server.cert, key: pki.server.key }];
const gw = await Gateway.start({
  listeners: [
    { name: 'mtls', address: '127.0.0.1', port: 0, tls: { certificates: certs, clientCertificate: { mode: 'request', ca: pki.ca.cert } } },
    { name: 'strict', address: '127.0.0.1', port: 0, tls: { certificates: certs, clientCertificate: { mode: 'require', ca: pki.ca.cert } } },
    { name: 'plain', address: '127.0.0.1', port: 0, plaintext: { mode: 'serve' } },
  ],
  upstreams: { a: { targets: [{ url: up.url }] } },
  routes: [
    { id: 'secure', match: { pathPrefix: '/secure' }, upstream: 'a', listeners: ['mtls', 'strict'], clientCert: { required: true, forwardHeader: 'X-Client-Cert' } },
    { id: 'subject', match: { pathPrefix: '/subject' }, upstream: 'a', listeners: ['mtls'], clientCert: { required: true, subjects: ['someone-else'] } },
    { id: 'fp', match: { pathPrefix: '/fp' }, upstream: 'a', listeners: ['mtls'], clientCert: { required: true, fingerprints: [clientFp.replace(/:/g, '').toLowerCase()] } },
    { id: 'san', match: { pathPrefix: '/san' }, upstream: 'a', listeners: ['mtls'], clientCert: { required: true, sans: ['DNS:svc.portcullis.test'], forwardHeader: 'x-client-cert' } },
    { id: 'optional', match: { pathPrefix: '/optional' }, upstream: 'a', listeners: ['mtls'], clientCert: { required: false, forwardHeader: 'X-Client-Cert' } },
    { id: 'open', match: { pathPrefix: '/' }, upstream: 'a' },
  ],
}, { logger: log.logger, accessLog: false, status: false });
after(async () => { await gw.close(0); await up.close(); });
const events: SecurityEvent[] = [];
gw.events.subscribe((e) => events.push(e));

const port = (name: string): number => gw.address(name).port;
const call = (path: string, o: Partial<TlsRequest> = {}, listener = 'mtls') => httpsRequest(port(listener), path, { ca, ...o });
const lastSeen = (): Recorded => up.seen[up.seen.length - 1]!;
const problemType = (body: string): string => (JSON.parse(body) as { type: string }).type.replace('https://portcullis.dev/problems/', '');
const refusals = () => log.lines.filter((l) => l.event === 'client-certificate-refused');

test('required: no client certificate → 403 client-certificate-required and a security log line', async () => {
  const before = up.seen.length;
  const n = refusals().length;
  const r = await call('/secure/x');
  assert.equal(r.status, 403, r.error);
  assert.equal(r.headers['content-type'], 'application/problem+json');
  assert.equal(problemType(r.body), 'client-certificate-required');
  assert.equal(up.seen.length, before, 'upstream not contacted');
  const line = refusals()[n];
  assert.ok(line, 'security log line');
  assert.equal(line.route, 'secure');
  assert.equal(line.reason, 'no client certificate');
  assert.equal(line.level, 40);
});

test('required: a certificate from another CA → 403 (the handshake records it as unverified)', async () => {
  const n = refusals().length;
  const r = await call('/secure/x', { cert: pki.clientOtherCa });
  assert.equal(r.status, 403, r.error);
  assert.equal(problemType(r.body), 'client-certificate-required');
  const line = refusals()[n]!;
  assert.notEqual(line.reason, 'no client certificate');
  assert.equal(line.subject, 'stranger');
});

test('required: an expired client certificate → 403', async () => {
  const n = refusals().length;
  const r = await call('/secure/x', { cert: pki.clientExpired });
  assert.equal(r.status, 403, r.error);
  assert.equal(problemType(r.body), 'client-certificate-required');
  assert.equal(refusals()[n]!.reason, 'CERT_HAS_EXPIRED');
});

test('required: a valid certificate passes; its identity goes upstream, a client-sent copy never does', async () => {
  const r = await call('/secure/x', { cert: pki.client, headers: { 'X-Client-Cert': 'subject=admin;san=;fingerprint=00', 'x-client-cert': 'forged-2' } });
  assert.equal(r.status, 200, r.error ?? r.body);
  const seen = lastSeen();
  assert.equal(seen.headers['x-client-cert'], `subject=client;san=;fingerprint=${clientFp}`);
  const copies = seen.rawHeaders.filter((_, i) => i % 2 === 0 && seen.rawHeaders[i]!.toLowerCase() === 'x-client-cert');
  assert.equal(copies.length, 1);
});

test('allowlists: subject mismatch → 403 client-certificate-not-allowed; fingerprint and SAN matches pass', async () => {
  const n = refusals().length;
  const bad = await call('/subject', { cert: pki.client });
  assert.equal(bad.status, 403, bad.error);
  assert.equal(problemType(bad.body), 'client-certificate-not-allowed');
  assert.equal(refusals()[n]!.reason, 'not in the route allowlist');
  assert.equal((await call('/fp', { cert: pki.client })).status, 200);
  assert.equal((await call('/fp', { cert: clientSan })).status, 403);
  const san = await call('/san', { cert: clientSan });
  assert.equal(san.status, 200, san.error ?? san.body);
  assert.equal(lastSeen().headers['x-client-cert'], `subject=san-client;san=DNS:svc.portcullis.test;fingerprint=${fingerprint256(clientSan.certPem)}`);
  assert.equal((await call('/san', { cert: pki.client })).status, 403);
});

test('every refusal is a security event: missing, unverified (other CA, expired), not allowed; passes are not', async () => {
  const from = events.length;
  assert.equal((await call('/secure/x')).status, 403);
  assert.equal((await call('/secure/x', { cert: pki.clientOtherCa })).status, 403);
  assert.equal((await call('/secure/x', { cert: pki.clientExpired })).status, 403);
  assert.equal((await call('/subject', { cert: pki.client })).status, 403);
  assert.equal((await call('/secure/x', { cert: pki.client })).status, 200);
  assert.equal((await call('/optional/x')).status, 200);
  const got = events.slice(from);
  assert.deepEqual(got.map((e) => [e.type, e.reason, e.route]), [
    ['client-certificate', 'client-certificate-missing', 'secure'],
    ['client-certificate', 'client-certificate-unverified', 'secure'],
    ['client-certificate', 'client-certificate-unverified', 'secure'],
    ['client-certificate', 'client-certificate-not-allowed', 'subject'],
  ]);
  assert.equal(got[0]!.credentialId, undefined);
  assert.equal(got[3]!.credentialId, clientFp, 'the fingerprint identifies the refused client');
  for (const e of got) { assert.equal(e.clientIp, '127.0.0.1'); assert.ok(e.requestId !== ''); }
});

test('routes without a requirement on the same listener work without a certificate; client copies are stripped', async () => {
  const open = await call('/open', { headers: { 'x-client-cert': 'forged' } });
  assert.equal(open.status, 200, open.error);
  assert.equal(lastSeen().headers['x-client-cert'], undefined);
  const opt = await call('/optional', { headers: { 'x-client-cert': 'forged' } });
  assert.equal(opt.status, 200);
  assert.equal(lastSeen().headers['x-client-cert'], undefined);
  const withCert = await call('/optional', { cert: pki.client, headers: { 'x-client-cert': 'forged' } });
  assert.equal(withCert.status, 200);
  assert.equal(lastSeen().headers['x-client-cert'], `subject=client;san=;fingerprint=${clientFp}`);
  const expired = await call('/optional', { cert: pki.clientExpired });
  assert.equal(expired.status, 200, 'optional: an unverified certificate is not refused');
  assert.equal(lastSeen().headers['x-client-cert'], undefined, '... but establishes no identity');
});

test('client copies of a forwardHeader are stripped on plain listeners too', async () => {
  const r = await get(`http://127.0.0.1:${port('plain')}/anything`, { headers: { 'x-client-cert': 'subject=admin' } });
  assert.equal(r.status, 200);
  assert.equal(lastSeen().headers['x-client-cert'], undefined);
  const secure = await get(`http://127.0.0.1:${port('plain')}/secure`, { headers: { 'x-client-cert': 'subject=admin' } });
  assert.equal(secure.status, 200, 'the route is not served on the plain listener: the catch-all answers');
  assert.equal(lastSeen().headers['x-client-cert'], undefined);
});

test('keep-alive: the identity is computed once per connection and holds for every request on it', async () => {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca, cert: pki.client.certPem, key: pki.client.keyPem });
  try {
    const a = await call('/secure/1', { agent });
    const b = await call('/secure/2', { agent });
    assert.equal(a.status, 200);
    assert.equal(b.status, 200);
    assert.equal(lastSeen().headers['x-client-cert'], `subject=client;san=;fingerprint=${clientFp}`);
  } finally {
    agent.destroy();
  }
});

test('HTTP/2: the compat request socket proxies to the TLS socket', async () => {
  const anon = h2Session(port('mtls'), { ca });
  const authed = h2Session(port('mtls'), { ca, cert: pki.client });
  try {
    const refused = await h2Request(anon, '/secure/h2');
    assert.equal(refused.status, 403, refused.error);
    assert.equal(problemType(refused.body), 'client-certificate-required');
    const ok = await h2Request(authed, '/secure/h2', { 'x-client-cert': 'forged' });
    assert.equal(ok.status, 200, ok.error);
    assert.equal(lastSeen().headers['x-client-cert'], `subject=client;san=;fingerprint=${clientFp}`);
    const again = await h2Request(authed, '/secure/h2b');
    assert.equal(again.status, 200);
    const open = await h2Request(anon, '/open', { 'x-client-cert': 'forged' });
    assert.equal(open.status, 200);
    assert.equal(lastSeen().headers['x-client-cert'], undefined);
  } finally {
    anon.close();
    authed.close();
  }
});

test('mode require: the handshake fails without a valid certificate; with one the route works', async () => {
  const before = up.seen.length;
  const none = await call('/secure/x', {}, 'strict');
  assert.equal(none.status, 0, `expected a failed handshake, got ${none.status}`);
  assert.ok(none.error);
  const other = await call('/secure/x', { cert: pki.clientOtherCa }, 'strict');
  assert.equal(other.status, 0);
  assert.equal(up.seen.length, before);
  const ok = await call('/secure/x', { cert: pki.client }, 'strict');
  assert.equal(ok.status, 200, ok.error);
  assert.equal(lastSeen().headers['x-client-cert'], `subject=client;san=;fingerprint=${clientFp}`);
});
