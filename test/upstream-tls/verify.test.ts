// https targets are verified by default: CA, validity dates, host name (or tls.servername), protocol
// version. Every failure is a generic 502 for the client, a security event in the log, and no request
// ever reaches the upstream.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { makePki } from '../helpers/certs.js';
import { get } from '../helpers/gateway.js';
import { tlsHarness, type TlsUpstream } from './helpers.js';
import { waitFor } from '../helpers/wait.js';

const pki = makePki();
const { upstream, gateway, defer } = tlsHarness();

/** The client sees a generic problem: no certificate detail, no upstream address. */
function assertTlsProblem(r: { status: number; body: string; headers: Record<string, unknown> }, up: TlsUpstream): void {
  assert.equal(r.status, 502);
  assert.match(String(r.headers['content-type']), /application\/problem\+json/);
  const p = JSON.parse(r.body) as { type: string; detail: string };
  assert.match(p.type, /upstream-tls-error$/);
  for (const leak of ['127.0.0.1', String(up.port), 'certificate', 'CERT', 'altname', 'localhost', 'expired', 'self']) {
    assert.ok(!r.body.includes(leak), `problem body leaks ${JSON.stringify(leak)}: ${r.body}`);
  }
  assert.equal(up.requests.length, 0, 'no request may reach an unverified upstream');
}

test('a target whose certificate chains to tls.ca is reached over TLS (default TLSv1.3 negotiated)', async () => {
  const up = await upstream(pki.server);
  const { base, log } = await gateway({ targets: [{ url: up.url }], tls: { ca: pki.ca.cert } });
  const r = await get(`${base}/hello`);
  assert.equal(r.status, 200);
  assert.equal(r.body, 'secure hello');
  assert.equal(up.requests.length, 1);
  assert.equal(up.requests[0]!.protocol, 'TLSv1.3');
  // IP targets get no SNI (RFC 6066 forbids IP literals); the IP SAN is what is verified.
  assert.equal(up.requests[0]!.servername, false);
  assert.equal(log.lines.filter((l) => l.level === 40).length, 0);
});

test('SNI is the target host name by default', async () => {
  const up = await upstream(pki.server);
  const { base } = await gateway({ targets: [{ url: `https://localhost:${up.port}` }], tls: { ca: pki.ca.cert } });
  const r = await get(`${base}/sni`);
  assert.equal(r.status, 200);
  assert.equal(up.requests[0]!.servername, 'localhost');
});

test('without tls.ca a certificate from a private CA is refused (verification is on by default)', async () => {
  const up = await upstream(pki.server);
  const { base, log } = await gateway({ targets: [{ url: up.url }] });
  const r = await get(`${base}/x`);
  assertTlsProblem(r, up);
  const ev = log.events('tls-verify-failed');
  assert.equal(ev.length, 1);
  assert.equal(ev[0]!.level, 40);
  assert.equal((ev[0]!.event as { code: string }).code, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  assert.equal(ev[0]!.target, up.url);
});

test('a certificate from another CA is refused', async () => {
  const up = await upstream(pki.serverOtherCa);
  const { base } = await gateway({ targets: [{ url: up.url }], tls: { ca: pki.ca.cert } });
  assertTlsProblem(await get(`${base}/x`), up);
});

test('an expired upstream certificate is refused', async () => {
  const up = await upstream(pki.serverExpired);
  const { base, log } = await gateway({ targets: [{ url: up.url }], tls: { ca: pki.ca.cert } });
  assertTlsProblem(await get(`${base}/x`), up);
  assert.equal((log.events('tls-verify-failed')[0]?.event as { code?: string } | undefined)?.code, 'CERT_HAS_EXPIRED');
});

test('a certificate for another name is refused; tls.servername sets the name to verify and to send as SNI', async () => {
  const up = await upstream(pki.other); // SAN other.test only
  const wrong = await gateway({ targets: [{ url: up.url }], tls: { ca: pki.ca.cert } });
  assertTlsProblem(await get(`${wrong.base}/x`), up);
  assert.equal((wrong.log.events('tls-verify-failed')[0]?.event as { code?: string } | undefined)?.code, 'ERR_TLS_CERT_ALTNAME_INVALID');

  const right = await gateway({ targets: [{ url: up.url }], tls: { ca: pki.ca.cert, servername: 'other.test' } });
  const r = await get(`${right.base}/x`);
  assert.equal(r.status, 200);
  assert.equal(up.requests[0]!.servername, 'other.test');
});

test('minVersion TLSv1.3 refuses a TLS 1.2-only upstream', async () => {
  const up = await upstream(pki.server, { maxVersion: 'TLSv1.2' });
  const strict = await gateway({ targets: [{ url: up.url }], tls: { ca: pki.ca.cert, minVersion: 'TLSv1.3' } });
  assertTlsProblem(await get(`${strict.base}/x`), up);
  // The default (TLSv1.2) still talks to it.
  const dflt = await gateway({ targets: [{ url: up.url }], tls: { ca: pki.ca.cert } });
  const r = await get(`${dflt.base}/x`);
  assert.equal(r.status, 200);
  assert.equal(up.requests[0]!.protocol, 'TLSv1.2');
});

test('insecureSkipVerify accepts an unknown CA', async () => {
  const up = await upstream(pki.serverOtherCa);
  const { base } = await gateway({ targets: [{ url: up.url }], tls: { insecureSkipVerify: true } });
  const r = await get(`${base}/x`);
  assert.equal(r.status, 200);
  assert.equal(up.requests.length, 1);
});

test('plain HTTP spoken on an https target is a TLS error, not a hang', async () => {
  const http = await import('node:http');
  const srv = http.createServer((_q, s) => s.end('plain'));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  defer(() => new Promise<void>((r) => { srv.closeAllConnections(); srv.close(() => r()); }));
  const port = (srv.address() as { port: number }).port;
  const { base } = await gateway({ targets: [{ url: `https://127.0.0.1:${port}` }] });
  const r = await get(`${base}/x`);
  assert.equal(r.status, 502);
  assert.match(r.body, /upstream-tls-error/);
});

test('active health checks use the same TLS settings as traffic (private CA): the target stays healthy', async () => {
  const up = await upstream(pki.server);
  const { base, log } = await gateway({
    targets: [{ url: up.url }],
    tls: { ca: pki.ca.cert },
    healthCheck: { active: { path: '/health', intervalMs: 30, healthyThreshold: 1, unhealthyThreshold: 1 } },
  });
  // wait for several probe rounds: with a probe that ignored tls.ca the target would be marked unhealthy
  await waitFor(() => up.requests.filter((r) => r.url === '/health').length >= 3, { what: 'TLS health probes at the upstream' });
  const r = await get(`${base}/after-probes`);
  assert.equal(r.status, 200);
  assert.equal(log.lines.filter((l) => JSON.stringify(l).includes('target-unhealthy')).length, 0);
});
