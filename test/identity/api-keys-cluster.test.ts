// Cluster mode: two workers, each with its own in-memory index of the same SQLite key store. A key revoked
// with the CLI is refused by every worker within a second (fresh connections spread over both workers;
// each worker's security log line proves it refused the key itself).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnGateway, stopGatewayProcess, type GatewayProcess } from '../helpers/process.js';
import { tempDir, removeTempDir } from '../helpers/tmp.js';
import { rawRequest } from '../helpers/servers.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { PEPPER, keyFromOutput, keyIdFromOutput, runCli } from '../helpers/keys.js';

let dir: string;
let up: TestUpstream;
let p: GatewayProcess | undefined;
before(async () => {
  dir = tempDir('portcullis-keys-cluster-');
  up = await startUpstream('a');
});
after(async () => {
  if (p !== undefined) await stopGatewayProcess(p);
  await up.close();
  await removeTempDir(dir);
});

test('cluster: every worker refuses a key revoked with the CLI within one second', async (t) => {
  const file = join(dir, 'gw.yaml');
  writeFileSync(file, `
server: { workers: 2, status: { enabled: false }, shutdownTimeoutMs: 2000 }
listeners: [{ name: main, address: 127.0.0.1, port: 0 }]
upstreams: { a: { targets: [{ url: "${up.url}" }] } }
accessLog: { enabled: false }
identity:
  pepper: \${PORTCULLIS_KEY_PEPPER}
  keyStore: { type: sqlite, path: ./keys.db }
routes:
  - id: api
    match: { pathPrefix: / }
    upstream: a
    authentication: { methods: [{ apiKey: {} }] }
`);
  // --store rather than -c: the config loader (ajv) would add a second to every CLI call
  const store = ['--store', `sqlite:${join(dir, 'keys.db')}`];
  const created = await runCli(['keys', 'create', ...store, '--consumer', 'acme']);
  assert.equal(created.code, 0, created.stderr);
  const key = keyFromOutput(created.stdout);
  const id = keyIdFromOutput(created.stdout);

  p = spawnGateway(['start', '-c', file], { PORTCULLIS_KEY_PEPPER: PEPPER });
  const w1 = await p.waitFor((l) => l.listener === 'main');
  const w2 = await p.waitFor((l) => l.listener === 'main' && l.pid !== w1.pid);
  const port = w1.port!;
  const send = () => rawRequest(port, 'GET', '/orders', [['X-API-Key', key]]); // Connection: close → a new connection each time

  for (let i = 0; i < 6; i++) assert.equal((await send()).status, 200);

  const revoked = await runCli(['keys', 'revoke', id, ...store]);
  assert.equal(revoked.code, 0, revoked.stderr);
  const start = performance.now();
  // until every request of a round of fresh connections is refused
  for (;;) {
    const round = await Promise.all(Array.from({ length: 6 }, send));
    if (round.every((r) => r.status === 401)) break;
    assert.ok(performance.now() - start < 1000, 'some worker still accepts the revoked key after 1 s');
  }
  const ms = performance.now() - start;
  t.diagnostic(`all workers refuse the revoked key ${ms.toFixed(0)} ms after \`keys revoke\` returned`);
  for (let i = 0; i < 10; i++) assert.equal((await send()).status, 401);

  const refusedBy = new Set(p.lines.filter((l) => l.event === 'security' && l.reason === 'api-key-revoked').map((l) => l.pid));
  assert.deepEqual([...refusedBy].sort(), [w1.pid, w2.pid].sort(), 'both workers refused the key themselves');
  assert.ok(!p.stderr().includes(key), 'the key never appears in the gateway log');
  assert.equal((await stopGatewayProcess(p)).code, 0);
});
