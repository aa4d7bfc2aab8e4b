// An independent scanner's view: testssl.sh (Debian package `testssl.sh`, installed by .ci/run) must find
// no legacy protocol and no cipher suite without forward secrecy or AEAD, on the default (TLS 1.3) listener
// and on one that enables TLS 1.2. About 10 s per listener.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Gateway } from '../../src/gateway/gateway.js';
import { silentLogger } from '../../src/observability/logger.js';
import { makePki } from '../helpers/certs.js';

function testsslBinary(): string | undefined {
  for (const name of ['testssl', 'testssl.sh']) {
    try { execFileSync('which', [name], { stdio: 'ignore' }); return name; } catch { /* try the next name */ }
  }
  return undefined;
}
const bin = testsslBinary();
const pki = makePki();
const dir = mkdtempSync(join(tmpdir(), 'portcullis-testssl-'));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Finding { id: string; finding: string }

function scan(port: number, name: string): Promise<Finding[]> {
  const out = join(dir, `${name}.json`);
  return new Promise((resolve, reject) => {
    execFile(bin!, ['--quiet', '--color', '0', '--warnings', 'off', '--protocols', '--cipher-per-proto', '--jsonfile', out, `127.0.0.1:${port}`],
      { timeout: 90_000 }, (err) => {
        // testssl exits non-zero for some findings; the JSON file is what we judge.
        try { resolve(JSON.parse(readFileSync(out, 'utf8')) as Finding[]); } catch { reject(err ?? new Error('testssl wrote no JSON')); }
      });
  });
}

const AEAD_FS = /^(TLS_AES_(128|256)_GCM_SHA(256|384)|TLS_CHACHA20_POLY1305_SHA256|ECDHE-(ECDSA|RSA)-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305))$/;

for (const [name, minVersion] of [['tls13-default', undefined], ['tls12-enabled', 'TLSv1.2']] as const) {
  test(`testssl.sh: ${name} offers no legacy protocol and only forward-secret AEAD suites`, { skip: bin === undefined ? 'testssl.sh is not installed (apt-get install testssl.sh; .ci/run installs it)' : false }, async () => {
    const gw = await Gateway.start({
      listeners: [{ name, address: '127.0.0.1', port: 0, tls: { ...(minVersion ? { minVersion } : {}), certificates: [{ cert: pki.server.cert, key: pki.server.key }, { cert: pki.serverRsa.cert, key: pki.serverRsa.key }] } }],
      routes: [{ id: 'r', match: {}, respond: { status: 200, body: 'ok' } }],
    }, { logger: silentLogger, accessLog: false, status: false });
    try {
      const findings = await scan(gw.address(name).port, name);
      const by = new Map(findings.map((f) => [f.id, f.finding]));
      for (const p of ['SSLv2', 'SSLv3', 'TLS1', 'TLS1_1']) assert.match(by.get(p) ?? '', /not offered/, `${p}: ${by.get(p)}`);
      assert.match(by.get('TLS1_3') ?? '', /offered/);
      assert.match(by.get('TLS1_2') ?? '', minVersion ? /^offered/ : /not offered/);
      const ciphers = findings.filter((f) => f.id.startsWith('cipher-')).map((f) => f.finding.trim().split(/\s+/)[3] ?? '');
      assert.ok(ciphers.length > 0, 'testssl listed no cipher at all');
      for (const c of ciphers) assert.match(c, AEAD_FS, `weak or unexpected cipher suite offered: ${c}`);
    } finally {
      await gw.close(0);
    }
  });
}
