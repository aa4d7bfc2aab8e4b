// /metrics answers for the whole node: with two workers sharing the status port, whichever worker gets the
// scrape returns the counters of both (merged by the primary), so a scrape never sees them appear and vanish.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import { spawnGateway, stopGatewayProcess, type GatewayProcess } from '../helpers/process.js';
import { tempDir } from '../helpers/tmp.js';
import { startUpstream } from '../helpers/upstream.js';
import { raw, statusOf } from '../helpers/gateway.js';

const up = await startUpstream('metrics-up');
let gw: GatewayProcess | undefined;
after(async () => { if (gw !== undefined) await stopGatewayProcess(gw); await up.close(); });

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function protocolRefusals(text: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('portcullis_security_events_total{') && line.includes('type="protocol"') && line.includes('reason="bad-host"')) sum += Number(line.split(' ').at(-1));
  }
  return sum;
}

test('two workers: every scrape reports the node total, whichever worker answers it', async (t) => {
  const dir = tempDir('portcullis-node-metrics-', t);
  const statusPort = await freePort();
  const file = join(dir, 'gw.json');
  await writeFile(file, JSON.stringify({
    server: { workers: 2, status: { port: statusPort }, shutdownTimeoutMs: 2000, watchConfig: false },
    accessLog: { enabled: false },
    listeners: [{ name: 'main', address: '127.0.0.1', port: 0 }],
    upstreams: { up: { targets: [{ url: up.url }] } },
    routes: [{ id: 'all', match: { pathPrefix: '/' }, upstream: 'up' }],
  }));
  gw = spawnGateway(['start', '-c', file]);
  const first = await gw.waitFor((l) => l.listener === 'main');
  await gw.waitFor((l) => l.listener === 'main' && l.pid !== first.pid);
  const port = first.port!;

  // 24 refused requests (invalid Host), each on its own connection: the primary spreads them over both workers.
  const N = 24;
  for (let i = 0; i < N; i++) {
    const reply = await raw(port, 'GET / HTTP/1.1\r\nHost: bad host\r\n\r\n', 300);
    assert.equal(statusOf(reply), 400);
  }
  // Each scrape on a fresh connection (another worker may answer each time): always the node's total.
  const seen: number[] = [];
  for (let i = 0; i < 6; i++) {
    const r = await request(`http://127.0.0.1:${statusPort}/metrics`, { reset: true });
    assert.equal(r.statusCode, 200, `scrape ${i}: ${r.statusCode}; gateway log:\n${gw.stderr().slice(-1500)}`);
    assert.match(String(r.headers['content-type']), /text\/plain/);
    seen.push(protocolRefusals(await r.body.text()));
  }
  assert.deepEqual(seen, Array(6).fill(N), `per-scrape totals ${seen.join(', ')}`);
});
