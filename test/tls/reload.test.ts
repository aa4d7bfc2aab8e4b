// Certificate renewal without restart: a replaced certificate is served to the next handshake while open
// connections keep working; a broken replacement keeps the previous certificate; expiry is published
// as a metric and warned about; a configuration reload that changes `tls` replaces the listener.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { copyFileSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { register } from 'prom-client';
import { makePki, type Pki, type CertFiles } from '../helpers/certs.js';
import { waitFor } from '../helpers/wait.js';
import { startTlsGateway, tryHandshake, memoryLogger, type TlsGateway } from './helpers.js';
import { EXPIRY_METRIC } from '../../src/tls/metrics.js';
import type { GatewayConfig } from '../../src/config/schema.js';

let pki: Pki;
let dir: string;
before(() => {
  pki = makePki();
  dir = mkdtempSync(join(tmpdir(), 'portcullis-tls-reload-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const fp = (c: CertFiles) => new X509Certificate(c.certPem).fingerprint256;

/** Atomic replacement, as renewal tools do: write beside, then rename over. */
function install(from: CertFiles, certPath: string, keyPath: string): void {
  copyFileSync(from.key, `${keyPath}.tmp`);
  copyFileSync(from.cert, `${certPath}.tmp`);
  renameSync(`${keyPath}.tmp`, keyPath);
  renameSync(`${certPath}.tmp`, certPath);
}

function get(agent: https.Agent, port: number): Promise<{ status: number; reused: boolean; peer: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, path: '/hello', servername: 'localhost', ca: pki.ca.certPem, agent, timeout: 5000 }, (res) => {
      const peer = (res.socket as import('node:tls').TLSSocket).getPeerX509Certificate()?.fingerprint256 ?? '';
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket, peer }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}

test('a renewed certificate is served to the next handshake; open connections keep working; a broken file keeps the old one', async () => {
  const cert = join(dir, 'live.pem');
  const key = join(dir, 'live-key.pem');
  install(pki.server, cert, key);
  const { logger, lines } = memoryLogger();
  const g: TlsGateway = await startTlsGateway({ certificates: [{ cert, key }] }, { logger });
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const first = await get(agent, g.port);
    assert.equal(first.status, 200);
    assert.equal(first.peer, fp(pki.server));

    const renewed = pki.issue({ name: 'renewed', dir, days: 90 });
    install(renewed, cert, key);
    await waitFor(() => lines.find((l) => /reloaded/.test(String(l.msg))), { what: 'reload log line' });

    const fresh = await tryHandshake(g.port);
    assert.ok(!('error' in fresh));
    assert.equal(fresh.fingerprint256, fp(renewed), 'a new handshake gets the renewed certificate');
    // The keep-alive connection opened before the renewal is still served (on its original handshake).
    const again = await get(agent, g.port);
    assert.equal(again.status, 200);
    // Same TLS connection as the first request, i.e. still on the handshake with the old certificate.
    assert.equal(again.reused, true, JSON.stringify(again));
    assert.deepEqual(g.gw.tls('main')!.certificates().map((c) => c.fingerprint256), [fp(renewed)]);

    // A broken replacement (truncated certificate): logged, the renewed certificate stays.
    writeFileSync(cert, renewed.certPem.slice(0, 200));
    await waitFor(() => lines.find((l) => l.level === 50 && /reload failed/.test(String(l.msg))), { what: 'reload failure log line' });
    const still = await tryHandshake(g.port);
    assert.ok(!('error' in still));
    assert.equal(still.fingerprint256, fp(renewed));
    assert.match(String(lines.find((l) => /reload failed/.test(String(l.msg)))!.err), /listeners\[0\]\.tls\.certificates\[0\]\.cert: .*live\.pem: invalid PEM certificate|no PEM certificate/);
    // A mismatched key is refused too.
    install({ ...pki.other, cert: pki.other.cert, key: pki.server.key }, cert, key);
    await waitFor(() => lines.find((l) => /does not match/.test(String(l.err ?? ''))), { what: 'mismatch log line' });
    const stillAgain = await tryHandshake(g.port);
    assert.ok(!('error' in stillAgain));
    assert.equal(stillAgain.fingerprint256, fp(renewed));
  } finally {
    agent.destroy();
    await g.close();
  }
});

test('expiry: metric per listener and certificate, and a warning inside expiryWarningDays', async () => {
  const soon = pki.issue({ name: 'soon', dir, days: 5 });
  const { logger, lines } = memoryLogger();
  const g = await startTlsGateway({ certificates: [{ cert: soon.cert, key: soon.key }], expiryWarningDays: 21 }, { logger });
  try {
    const text = await register.getSingleMetricAsString(EXPIRY_METRIC);
    const m = new RegExp(`${EXPIRY_METRIC}\\{listener="main",certificate="${soon.cert.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"\\} (-?\\d+)`).exec(text);
    assert.ok(m, text);
    const secs = Number(m[1]);
    assert.ok(secs > 4 * 86400 && secs <= 5 * 86400, String(secs));
    const warn = lines.find((l) => l.level === 40 && l.certificate === soon.cert);
    assert.ok(warn, JSON.stringify(lines));
    assert.equal(warn.days_left, 4);
  } finally {
    await g.close();
  }
  // A closed listener's series is withdrawn.
  assert.doesNotMatch(await register.getSingleMetricAsString(EXPIRY_METRIC), new RegExp(soon.cert.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
});

test('a configuration reload that changes tls replaces the listener; a broken one changes nothing', async () => {
  const g = await startTlsGateway({ certificates: [{ cert: pki.server.cert, key: pki.server.key }] });
  try {
    const base = (tlsBlock: NonNullable<GatewayConfig['listeners'][0]['tls']>): GatewayConfig => ({
      listeners: [{ name: 'main', address: '127.0.0.1', port: g.port, tls: tlsBlock }],
      upstreams: { up: { targets: [{ url: g.upstream.url }] } },
      routes: [{ id: 'all', match: { pathPrefix: '/' }, upstream: 'up' }],
    });
    await assert.rejects(g.gw.reload(base({ certificates: [{ cert: join(dir, 'missing.pem'), key: pki.server.key }] })), /listeners\[0\]\.tls\.certificates\[0\]\.cert: cannot read/);
    const before = await tryHandshake(g.port);
    assert.ok(!('error' in before));
    assert.equal(before.fingerprint256, fp(pki.server));

    await g.gw.reload(base({ certificates: [{ cert: pki.serverRsa.cert, key: pki.serverRsa.key }] }));
    assert.equal(g.gw.address('main').port, g.port, 'same port, new listener');
    const after = await tryHandshake(g.port);
    assert.ok(!('error' in after), JSON.stringify(after));
    assert.equal(after.fingerprint256, fp(pki.serverRsa));
  } finally {
    await g.close();
  }
});
