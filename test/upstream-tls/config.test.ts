// Upstream TLS configuration: what `validate` reports, and compile-time failures that name the field
// and the file (files are read once, when the configuration is applied; relative to baseDir).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, copyFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makePki, spkiPin } from '../helpers/certs.js';
import { get } from '../helpers/gateway.js';
import { silentLogger } from '../../src/observability/logger.js';
import { Gateway } from '../../src/gateway/gateway.js';
import { CompileError } from '../../src/gateway/compile.js';
import { validateConfig } from '../../src/config/load.js';
import type { GatewayConfig, UpstreamConfig } from '../../src/config/schema.js';
import { startTlsUpstream, tlsConfig } from './helpers.js';

const pki = makePki();
const dir = mkdtempSync(join(tmpdir(), 'portcullis-upstream-tls-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const HTTPS = 'https://127.0.0.1:9443';
function cfg(u: Partial<UpstreamConfig>): GatewayConfig {
  return {
    listeners: [{ name: 'main', address: '127.0.0.1', port: 8080 }],
    upstreams: { api: { targets: [{ url: HTTPS }], ...u } },
    routes: [{ id: 'r', match: { pathPrefix: '/' }, upstream: 'api' }],
  };
}
function issues(c: GatewayConfig): { errors: string[]; warnings: string[] } {
  const r = validateConfig(c);
  const fmt = (i: { path: string; message: string }) => `${i.path}: ${i.message}`;
  return r.ok ? { errors: [], warnings: r.warnings.map(fmt) } : { errors: r.errors.map(fmt), warnings: r.warnings.map(fmt) };
}

test('validate warns about insecureSkipVerify, more mildly with pins', () => {
  const plain = issues(cfg({ tls: { insecureSkipVerify: true } }));
  assert.deepEqual(plain.errors, []);
  assert.equal(plain.warnings.length, 1);
  assert.match(plain.warnings[0]!, /^upstreams\.api\.tls\.insecureSkipVerify: .*not verified.*impersonate/);

  const pinned = issues(cfg({ tls: { insecureSkipVerify: true, pins: [spkiPin(pki.server.certPem)] } }));
  assert.deepEqual(pinned.errors, []);
  assert.equal(pinned.warnings.length, 1);
  assert.match(pinned.warnings[0]!, /^upstreams\.api\.tls\.insecureSkipVerify: .*only the pinned keys/);

  const withCa = issues(cfg({ tls: { insecureSkipVerify: true, ca: 'ca.pem' } }));
  assert.ok(withCa.warnings.some((w) => /^upstreams\.api\.tls\.ca: ignored/.test(w)), withCa.warnings.join('\n'));
});

test('validate: tls on an upstream whose targets are all http:// is an error; mixed targets warn', () => {
  const allHttp = issues(cfg({ targets: [{ url: 'http://127.0.0.1:9000' }, { url: 'http://127.0.0.1:9001' }], tls: { ca: 'ca.pem' } }));
  assert.equal(allHttp.errors.length, 1);
  assert.match(allHttp.errors[0]!, /^upstreams\.api\.tls: .*every target .* is http:\/\//);

  const mixed = issues(cfg({ targets: [{ url: HTTPS }, { url: 'http://127.0.0.1:9000' }], tls: { ca: 'ca.pem' } }));
  assert.deepEqual(mixed.errors, []);
  assert.ok(mixed.warnings.some((w) => /^upstreams\.api\.tls: targets \[1\] are http:\/\//.test(w)), mixed.warnings.join('\n'));
  // The warning does not echo target URLs (they may carry substituted secrets).
  assert.ok(mixed.warnings.every((w) => !w.includes('127.0.0.1')));

  // https targets without a tls block are fine (verified against the system store).
  assert.deepEqual(issues(cfg({})), { errors: [], warnings: [] });
  assert.deepEqual(issues(cfg({ tls: { ca: 'ca.pem', pins: [spkiPin(pki.server.certPem)] } })), { errors: [], warnings: [] });
});

test('validate: half a client certificate, a stray passphrase and an IP servername are errors', () => {
  assert.match(issues(cfg({ tls: { cert: 'c.pem' } })).errors.join('\n'), /upstreams\.api\.tls\.key: a client certificate needs both/);
  assert.match(issues(cfg({ tls: { key: 'k.pem' } })).errors.join('\n'), /upstreams\.api\.tls\.cert: a client certificate needs both/);
  assert.match(issues(cfg({ tls: { passphrase: 'x' } })).errors.join('\n'), /upstreams\.api\.tls\.passphrase:/);
  assert.match(issues(cfg({ tls: { servername: '10.0.0.1' } })).errors.join('\n'), /upstreams\.api\.tls\.servername:/);
});

async function startError(c: GatewayConfig, baseDir?: string): Promise<CompileError> {
  try {
    const gw = await Gateway.start(c, { logger: silentLogger, accessLog: false, status: false, ...(baseDir !== undefined ? { baseDir } : {}) });
    await gw.close(0);
  } catch (err) {
    assert.ok(err instanceof CompileError, `expected a CompileError, got ${String(err)}`);
    return err;
  }
  assert.fail('the gateway started');
}

test('a missing CA file fails the start, naming the field and the resolved file', async () => {
  const err = await startError(tlsConfig({ targets: [{ url: HTTPS }], tls: { ca: 'nope/ca.pem' } }), dir);
  assert.equal(err.path, 'upstreams.api.tls.ca');
  assert.ok(err.message.includes(join(dir, 'nope/ca.pem')), err.message);
  assert.match(err.message, /ENOENT/);
});

test('unusable PEM files fail the start with the field that is wrong', async () => {
  const notPem = join(dir, 'not.pem');
  writeFileSync(notPem, 'hello\n');
  assert.equal((await startError(tlsConfig({ targets: [{ url: HTTPS }], tls: { ca: notPem } }))).path, 'upstreams.api.tls.ca');
  assert.equal((await startError(tlsConfig({ targets: [{ url: HTTPS }], tls: { cert: notPem, key: pki.client.key } }))).path, 'upstreams.api.tls.cert');

  const enc = pki.issue({ name: 'cfg-client-enc', usage: 'client', passphrase: 'right' });
  const wrongPass = await startError(tlsConfig({ targets: [{ url: HTTPS }], tls: { cert: enc.cert, key: enc.key, passphrase: 'hunter2-not-it' } }));
  assert.equal(wrongPass.path, 'upstreams.api.tls.key');
  assert.match(wrongPass.message, /passphrase/);
  assert.ok(!wrongPass.message.includes('hunter2'), 'the passphrase is not echoed');

  const mismatch = await startError(tlsConfig({ targets: [{ url: HTTPS }], tls: { cert: pki.client.cert, key: pki.server.key } }));
  assert.equal(mismatch.path, 'upstreams.api.tls.key');
  assert.match(mismatch.message, /does not belong/);
});

test('relative file names resolve against baseDir', async () => {
  copyFileSync(pki.ca.cert, join(dir, 'upstream-ca.pem'));
  const up = await startTlsUpstream(pki.server);
  const gw = await Gateway.start(tlsConfig({ targets: [{ url: up.url }], tls: { ca: 'upstream-ca.pem' } }), { logger: silentLogger, accessLog: false, status: false, baseDir: dir });
  try {
    const r = await get(`http://127.0.0.1:${gw.address('main').port}/x`);
    assert.equal(r.status, 200);
  } finally {
    await gw.close(200);
    await up.close();
  }
});
