// Process lifecycle: graceful SIGTERM drain, and the cluster primary replacing a crashed worker.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { request } from 'undici';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { spawnGateway } from '../helpers/process.js';

let up: TestUpstream;
let dir: string;
before(async () => {
  up = await startUpstream('a');
  dir = await mkdtemp(join(tmpdir(), 'portcullis-life-'));
});
after(async () => { await up.close(); await rm(dir, { recursive: true, force: true }); });

const yaml = (workers: number) => `
server: { workers: ${workers}, status: { address: 127.0.0.1, port: 0 }, shutdownTimeoutMs: 5000 }
listeners: [{ name: main, address: 127.0.0.1, port: 0 }]
upstreams: { a: { targets: [{ url: "${up.url}" }] } }
routes: [{ id: r, match: { pathPrefix: / }, upstream: a }]
accessLog: { enabled: false }
`;

test('SIGTERM drains: in-flight request completes, new connections are refused, exit code 0', async () => {
  const file = join(dir, 'drain.yaml');
  await writeFile(file, yaml(1));
  const p = spawnGateway(['start', '-c', file]);
  const l = await p.waitFor((x) => x.listener === 'main');
  const url = `http://127.0.0.1:${l.port}`;
  const slow = request(`${url}/slow/700`);
  await waitFor(() => up.seen.some((s) => s.url === '/slow/700'));
  p.child.kill('SIGTERM');
  await p.waitFor((x) => x.msg === 'shutting down: draining in-flight requests');
  const r = await slow;
  assert.equal(r.statusCode, 200);
  await r.body.text();
  const { code } = await p.exited;
  assert.equal(code, 0);
  await assert.rejects(connect(l.port!), /ECONNREFUSED/);
});

test('cluster: a crashed worker is replaced and traffic keeps flowing', async () => {
  const file = join(dir, 'cluster.yaml');
  await writeFile(file, yaml(2));
  const p = spawnGateway(['start', '-c', file]);
  try {
    const a = await p.waitFor((x) => x.listener === 'main');
    const b = await p.waitFor((x) => x.listener === 'main' && x.pid !== a.pid);
    process.kill(a.pid!, 'SIGKILL');
    await p.waitFor((x) => x.msg === 'worker died; starting a replacement');
    const c = await p.waitFor((x) => x.listener === 'main' && x.pid !== a.pid && x.pid !== b.pid);
    assert.ok(c.pid);
    for (let i = 0; i < 20; i++) {
      const r = await request(`http://127.0.0.1:${a.port}/after-crash`);
      assert.equal(r.statusCode, 200);
      await r.body.text();
    }
    // the status listener answers in cluster mode too
    const st = await p.waitFor((x) => x.listener === 'status');
    const h = await request(`http://127.0.0.1:${st.port}/healthz`);
    assert.equal(h.statusCode, 200);
    await h.body.text();
  } finally {
    p.child.kill('SIGTERM');
    const { code } = await p.exited;
    assert.equal(code, 0);
  }
});

function connect(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(); });
    s.on('error', reject);
  });
}

async function waitFor(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
