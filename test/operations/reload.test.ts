// Hot reload: a new configuration is validated first, applied atomically, and no request fails because of it.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { request, Agent } from 'undici';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { startGateway, config } from '../helpers/gateway.js';
import { spawnGateway, stopGatewayProcess, type GatewayProcess } from '../helpers/process.js';
import { tempDir, removeTempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

let up: TestUpstream;
let dir: string;
before(async () => {
  up = await startUpstream('a');
  dir = tempDir('portcullis-reload-');
});
after(async () => { await up.close(); await removeTempDir(dir); });

const yaml = (gen: number, workers: number, port = 0) => `
server: { workers: ${workers}, status: { enabled: false }, shutdownTimeoutMs: 5000 }
listeners: [{ name: main, address: 127.0.0.1, port: ${port} }]
upstreams: { a: { targets: [{ url: "${up.url}" }] } }
routes:
  - id: r
    match: { pathPrefix: / }
    upstream: a
    responseHeaders: { set: { x-gen: "${gen}" } }
accessLog: { enabled: false }
`;

/** Writes atomically (temp + rename), as deploy tools do, so a watcher never reads half a file. */
async function writeConfig(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.hrtime.bigint()}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, file);
}

/** Runs `concurrency` request loops until stop() and records every outcome. */
function load(base: string, concurrency: number) {
  const agent = new Agent({ connections: concurrency, keepAliveTimeout: 10_000 });
  let running = true;
  const statuses = new Map<number | string, number>();
  const gens = new Set<string>();
  let total = 0;
  const loops = Array.from({ length: concurrency }, async () => {
    while (running) {
      try {
        const r = await request(`${base}/x`, { dispatcher: agent });
        await r.body.text();
        statuses.set(r.statusCode, (statuses.get(r.statusCode) ?? 0) + 1);
        gens.add(String(r.headers['x-gen']));
      } catch (err) {
        const k = (err as { code?: string }).code ?? 'error';
        statuses.set(k, (statuses.get(k) ?? 0) + 1);
      }
      total++;
    }
  });
  return {
    get total() { return total; },
    gens,
    async stop() { running = false; await Promise.all(loops); await agent.close(); return statuses; },
  };
}

test('in-process reload under load: zero failed requests, new config takes effect', async () => {
  const base = (gen: number) => config({
    upstreams: { a: { targets: [{ url: up.url }] } },
    routes: [{ id: 'r', match: { pathPrefix: '/' }, upstream: 'a', responseHeaders: { set: { 'x-gen': String(gen) } } }],
  });
  const { gw, base: url } = await startGateway(base(1));
  const l = load(url, 16);
  for (let g = 2; g <= 11; g++) {
    // reload only while requests are really flowing: at least 20 more completed since the last swap
    const seen = l.total;
    await waitUntil(() => l.total >= seen + 20);
    await gw.reload(base(g));
  }
  const seen = l.total;
  await waitUntil(() => l.total >= seen + 20);
  const statuses = await l.stop();
  await gw.close(1000);
  assert.deepEqual([...statuses.keys()], [200], `unexpected outcomes: ${JSON.stringify([...statuses])}`);
  assert.ok(l.total > 100, `too little traffic to mean anything: ${l.total}`);
  assert.ok(l.gens.has('11'), 'the last configuration must be live');
});

test('in-process reload: a config that fails to compile changes nothing', async () => {
  const good = config({ upstreams: { a: { targets: [{ url: up.url }] } }, routes: [{ id: 'r', match: { pathPrefix: '/' }, upstream: 'a' }] });
  const { gw, base } = await startGateway(good);
  const bad = config({ upstreams: {}, routes: [{ id: 'r', match: { pathPrefix: '/' }, upstream: 'missing' }] });
  await assert.rejects(gw.reload(bad), /unknown upstream/);
  const r = await request(`${base}/still-works`);
  assert.equal(r.statusCode, 200);
  await r.body.text();
  await gw.close(1000);
});

for (const workers of [1, 2]) {
  test(`process (${workers} worker${workers > 1 ? 's' : ''}): SIGHUP and file change reload under load with zero failures; invalid file is rejected`, async () => {
    const file = join(dir, `gw-${workers}.yaml`);
    await writeConfig(file, yaml(1, workers));
    const p: GatewayProcess = spawnGateway(['start', '-c', file]);
    try {
      const first = await p.waitFor((l) => l.listener === 'main' && typeof l.port === 'number');
      for (let i = 1; i < workers; i++) await p.waitFor((l) => l.listener === 'main', undefined, p.lines.indexOf(first) + i);
      const url = `http://127.0.0.1:${first.port}`;
      const l = load(url, 8);

      // 1) SIGHUP after an edit
      await writeConfig(file, yaml(2, workers));
      p.child.kill('SIGHUP');
      await waitUntil(() => l.gens.has('2'));
      // 2) an invalid file: logged, old config kept
      const mark = p.lines.length;
      await writeConfig(file, yaml(3, workers).replace('pathPrefix', 'pathPrefixx'));
      await p.waitFor((l2) => l2.msg === 'new configuration rejected; keeping the running one', undefined, mark);
      // 3) file watcher picks up a valid change without a signal
      await writeConfig(file, yaml(4, workers));
      await waitUntil(() => l.gens.has('4'));
      const statuses = await l.stop();
      assert.deepEqual([...statuses.keys()], [200], `unexpected outcomes: ${JSON.stringify([...statuses])}`);
      assert.ok(!l.gens.has('3'), 'the invalid configuration must never serve');
      assert.ok(p.lines.some((x) => typeof x.issue === 'string' && String(x.issue).includes('pathPrefixx')), 'the error names the bad key');
    } finally {
      const { code } = await stopGatewayProcess(p);
      assert.equal(code, 0);
    }
  });
}

/** Bounded polling (helpers/wait.ts: generous deadline, scaled by PORTCULLIS_TEST_TIMEOUT_SCALE). */
async function waitUntil(cond: () => boolean): Promise<void> {
  await waitFor(() => cond() || undefined, { what: 'traffic/configuration condition' });
}
