// Access-log durability: no line is lost across reloads (the retiring generation's log closes only once
// its last request has logged), and a killed process loses at most the last flush interval.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { request, Agent } from 'undici';
import { startGateway, config } from '../helpers/gateway.js';
import { startUpstream } from '../helpers/upstream.js';
import { compile, ACCESS_LOG_FLUSH_MS } from '../../src/server/access-log.js';
import type { GatewayConfig } from '../../src/config/schema.js';

const dir = mkdtempSync(join(tmpdir(), 'portcullis-alr-'));
const up = await startUpstream('a');
after(async () => { await up.close(); rmSync(dir, { recursive: true, force: true }); });
const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).length : 0);

test('reloads under load lose no access-log line', async () => {
  const file = join(dir, 'reload.log');
  const cfg = (gen: number): GatewayConfig => config({
    upstreams: { a: { targets: [{ url: up.url }] } },
    routes: [{ id: 'r', match: { pathPrefix: '/' }, upstream: 'a', responseHeaders: { set: { 'x-gen': String(gen) } } }],
    accessLog: { destination: file },
  });
  const { gw, base } = await startGateway(cfg(1), { accessLog: true });
  const agent = new Agent({ connections: 16 });
  let running = true;
  let done = 0;
  let failed = 0;
  const loops = Array.from({ length: 16 }, async (_, i) => {
    while (running) {
      try {
        // a few slow ones keep the old generation busy past the swap
        const r = await request(`${base}/${i % 4 === 0 ? 'slow/15' : 'x'}`, { dispatcher: agent });
        await r.body.text();
        done++;
      } catch { failed++; }
    }
  });
  for (let g = 2; g <= 25; g++) {
    const seen = done;
    while (done < seen + 30) await new Promise((r) => setTimeout(r, 2));
    await gw.reload(cfg(g));
  }
  running = false;
  await Promise.all(loops);
  await agent.close();
  await gw.close(1000);
  assert.equal(failed, 0);
  assert.equal(lines(file), done, `${done - lines(file)} access-log lines lost over 24 reloads`);
});

test('flush interval is at most 100 ms, and process exit flushes the pending batch synchronously', async () => {
  assert.ok(ACCESS_LOG_FLUSH_MS <= 100);
  // A child process logs a few lines to stdout and exits abruptly (process.exit, no close()).
  const file = join(dir, 'exit.log');
  const mod = fileURLToPath(new URL('../../src/server/access-log.ts', import.meta.url));
  const script = `
    import { compile } from ${JSON.stringify(mod)};
    const log = compile({ destination: ${JSON.stringify(file)} });
    const ctx = { id: 'r', listener: 'l', clientIp: '127.0.0.1', req: { method: 'GET', headers: {} }, res: undefined, path: '/p', query: '', routeId: '', status: 200, bytesIn: 0, bytesOut: 0, start: performance.now(), upstreamEnd: 0, upstreamTarget: '', attempts: 1, throttleMs: 0 };
    for (let i = 0; i < 73; i++) log.log(ctx);
    process.exit(3);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: 'inherit' });
  const code = await new Promise((r) => child.on('exit', r));
  assert.equal(code, 3);
  assert.equal(lines(file), 73);
  // and an interval flush happens without any close
  const f2 = join(dir, 'interval.log');
  const log = compile({ destination: f2 })!;
  log.log({ id: 'r', listener: 'l', clientIp: '127.0.0.1', req: { method: 'GET', headers: {} }, path: '/p', query: '', routeId: '', status: 200, bytesIn: 0, bytesOut: 0, start: performance.now(), upstreamEnd: 0, upstreamTarget: '', attempts: 1, throttleMs: 0 } as never);
  await new Promise((r) => setTimeout(r, ACCESS_LOG_FLUSH_MS + 50));
  assert.equal(lines(f2), 1);
  log.close();
});
