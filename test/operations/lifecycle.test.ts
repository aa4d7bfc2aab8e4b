// Process lifecycle: graceful SIGTERM drain, and the cluster primary replacing a crashed worker.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import net from 'node:net';
import { request } from 'undici';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { startScripted } from '../helpers/servers.js';
import { spawnGateway, stopGatewayProcess } from '../helpers/process.js';
import { tempDir, removeTempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

let up: TestUpstream;
let dir: string;
before(async () => {
  up = await startUpstream('a');
  dir = tempDir('portcullis-life-');
});
after(async () => { await up.close(); await removeTempDir(dir); });

const yaml = (workers: number, upstream = up.url) => `
server: { workers: ${workers}, status: { address: 127.0.0.1, port: 0 }, shutdownTimeoutMs: 5000 }
listeners: [{ name: main, address: 127.0.0.1, port: 0 }]
upstreams: { a: { targets: [{ url: "${upstream}" }] } }
routes: [{ id: r, match: { pathPrefix: / }, upstream: a }]
accessLog: { enabled: false }
`;

test('SIGTERM drains: in-flight request completes, new connections are refused, exit code 0', async (t) => {
  // the upstream holds the request until the gateway has started draining: it is in flight for sure
  const held = await startScripted('held', () => undefined);
  t.after(() => held.close());
  const file = join(dir, 'drain.yaml');
  await writeFile(file, yaml(1, held.url));
  const p = spawnGateway(['start', '-c', file]);
  t.after(() => stopGatewayProcess(p));
  held.handler = (_req, res) => {
    void p.waitFor((x) => x.msg === 'shutting down: draining in-flight requests')
      .then(() => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('drained'); }, () => res.destroy());
  };
  const l = await p.waitFor((x) => x.listener === 'main');
  const url = `http://127.0.0.1:${l.port}`;
  const slow = request(`${url}/held`);
  await waitFor(() => held.arrived > 0, { what: 'the request at the upstream' });
  p.child.kill('SIGTERM');
  const r = await slow;
  assert.equal(r.statusCode, 200);
  assert.equal(await r.body.text(), 'drained');
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
    const { code } = await stopGatewayProcess(p);
    assert.equal(code, 0);
  }
});

function connect(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(); });
    s.on('error', reject);
  });
}
