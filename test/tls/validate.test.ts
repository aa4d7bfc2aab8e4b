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
