// A reload that replaces a listener (here: maxHeaderBytes changed) must not fail requests on busy
// keep-alive connections: the retiring listener answers their next request with `connection: close`
// (HTTP/1.1) or sends GOAWAY (HTTP/2), so clients move to the new listener before the drain deadline.
// 2 workers, as in production: the primary reloads them one at a time, so the port always has a listener.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtemp, writeFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request, Agent } from 'undici';
import { startUpstream } from '../helpers/upstream.js';
import { spawnGateway } from '../helpers/process.js';

const up = await startUpstream('a');
const dir = await mkdtemp(join(tmpdir(), 'portcullis-replace-'));
after(async () => { await up.close(); await rm(dir, { recursive: true, force: true }); });

const freePort = () => new Promise<number>((resolve) => { const s = net.createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)); }); });

const yaml = (gen: number, port: number) => `
server: { workers: 2, status: { enabled: false }, shutdownTimeoutMs: 2000, watchConfig: false }
listeners: [{ name: main, address: 127.0.0.1, port: ${port}, limits: { maxHeaderBytes: ${16384 + gen * 1024} } }]
upstreams: { a: { targets: [{ url: "${up.url}" }] } }
routes: [{ id: r, match: { pathPrefix: / }, upstream: a, responseHeaders: { set: { x-gen: "${gen}" } } }]
accessLog: { enabled: false }
`;

async function writeConfig(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.hrtime.bigint()}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, file);
}

test('listener replaced on reload under back-to-back keep-alive load (2 workers): zero failed requests', async () => {
  const port = await freePort();
  const file = join(dir, 'gw.yaml');
  await writeConfig(file, yaml(1, port));
  const p = spawnGateway(['start', '-c', file]);
  try {
    const a = await p.waitFor((l) => l.listener === 'main', 60_000);
    await p.waitFor((l) => l.listener === 'main' && l.pid !== a.pid, 60_000);
    const agent = new Agent({ connections: 16, keepAliveTimeout: 30_000 });
    let running = true;
    const outcomes = new Map<string, number>();
    const gens = new Set<string>();
    const loops = Array.from({ length: 16 }, async () => {
      while (running) {
        let k: string;
        try {
          const r = await request(`http://127.0.0.1:${port}/x`, { dispatcher: agent });
          await r.body.text();
          k = String(r.statusCode);
          gens.add(String(r.headers['x-gen']));
        } catch (err) { k = (err as { code?: string }).code ?? 'error'; }
        outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
      }
    });
    for (let g = 2; g <= 4; g++) {
      await new Promise((r) => setTimeout(r, 1500));
      const mark = p.lines.length;
      await writeConfig(file, yaml(g, port));
      p.child.kill('SIGHUP');
      await p.waitFor((l) => l.msg === 'worker reloaded' && l.generation === g, 10_000, mark);
      await p.waitFor((l) => l.msg === 'worker reloaded' && l.generation === g, 10_000, p.lines.findIndex((l, i) => i >= mark && l.msg === 'worker reloaded') + 1);
    }
    await new Promise((r) => setTimeout(r, 2500)); // past the last drain deadline
    running = false;
    await Promise.all(loops);
    await agent.close();
    assert.deepEqual([...outcomes.keys()], ['200'], `outcomes: ${JSON.stringify([...outcomes])}`);
    assert.ok(gens.has('4'));
  } finally {
    p.child.kill('SIGTERM');
    await p.exited;
  }
});
