// `portcullis validate` checks certificate files the way the listener will load them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigFile, formatIssue } from '../../src/config/load.js';
import { makePki } from '../helpers/certs.js';

const pki = makePki();
const dir = mkdtempSync(join(tmpdir(), 'portcullis-validate-tls-'));

function config(cert: string, key: string): string {
  const file = join(dir, `c-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, `
listeners:
  - name: https
    address: 127.0.0.1
    port: 0
    tls:
      certificates:
        - cert: ${cert}
          key: ${key}
routes: [{ id: r, match: {}, respond: { status: 200 } }]
`);
  return file;
}

test('a valid certificate and key pass', async () => {
  const r = await loadConfigFile(config(pki.server.cert, pki.server.key));
  assert.equal(r.ok, true, r.ok ? '' : r.errors.map(formatIssue).join('\n'));
});

test('an expired certificate fails validation, naming the path', async () => {
  const r = await loadConfigFile(config(pki.serverExpired.cert, pki.serverExpired.key));
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.ok(r.errors.some((e) => e.path.startsWith('listeners[0].tls.certificates[0]') && /expired/i.test(e.message)), r.errors.map(formatIssue).join('\n'));
});

test('a key that does not match its certificate fails validation', async () => {
  const r = await loadConfigFile(config(pki.server.cert, pki.other.key));
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.ok(r.errors.some((e) => e.path.startsWith('listeners[0].tls.certificates[0]') && /match/i.test(e.message)), r.errors.map(formatIssue).join('\n'));
});

test('a missing certificate file fails validation', async () => {
  const r = await loadConfigFile(config(join(dir, 'nope.pem'), pki.server.key));
  assert.equal(r.ok, false);
});

test('the status listener exposes certificate expiry as a Prometheus metric', async () => {
  const { Gateway } = await import('../../src/gateway/gateway.js');
  const { silentLogger } = await import('../../src/observability/logger.js');
  const gw = await Gateway.start({
    server: { status: { address: '127.0.0.1', port: 0 } },
    listeners: [{ name: 'https', address: '127.0.0.1', port: 0, tls: { certificates: [{ cert: pki.server.cert, key: pki.server.key }] } }],
    routes: [{ id: 'r', match: {}, respond: { status: 200 } }],
  }, { logger: silentLogger, accessLog: false });
  try {
    const st = gw.statusAddress()!;
    const res = await fetch(`http://127.0.0.1:${st.port}/metrics`);
    assert.equal(res.status, 200);
    const text = await res.text();
    const line = text.split('\n').find((l) => l.startsWith('portcullis_tls_certificate_expiry_seconds{') && l.includes('listener="https"'));
    assert.ok(line, text);
    const seconds = Number(line.split(' ').at(-1));
    assert.ok(seconds > 86_400, `expected a certificate valid for more than a day, got ${seconds}`);
  } finally {
    await gw.close(0);
  }
});
