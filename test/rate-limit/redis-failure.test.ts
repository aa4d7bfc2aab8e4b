// Redis stopped mid-test (a private redis-server, killed): failOpen routes fall back to the local
// per-process limiter, failClosed routes answer 503; a metric and a (rate-limited) log line; no hang.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { register } from 'prom-client';
import { startGateway, config, get } from '../helpers/gateway.js';
import { startUpstream } from '../helpers/upstream.js';
import { closedPort, captureLogger } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';
import { spawnTracked } from '../helpers/process.js';
import { SecurityEventBus, type SecurityEvent } from '../../src/observability/security-events.js';

const port = await closedPort();
const redis: ChildProcess = spawnTracked('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
const up = await startUpstream('rlf');
const cap = captureLogger();
const events = new SecurityEventBus();
const seen: SecurityEvent[] = [];
events.subscribe((e) => seen.push(e));
let gw: Awaited<ReturnType<typeof startGateway>>['gw'] | undefined;
after(async () => {
  await gw?.close(0);
  await up.close();
  if (redis.exitCode === null) { redis.kill('SIGKILL'); await once(redis, 'exit'); }
});

async function storeErrors(route: string): Promise<number> {
  const m = (await register.getSingleMetric('portcullis_rate_limit_store_errors_total')?.get())?.values.find((v) => v.labels.route === route);
  return m?.value ?? 0;
}

/** resolves once the private redis-server accepts connections */
function redisListening(): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  });
}

test('Redis killed mid-test: failOpen uses the local limiter, failClosed answers 503, errors are counted and logged', async () => {
  await waitFor(redisListening, { what: 'the private redis-server to listen' });
  const started = await startGateway(config({
    state: { type: 'redis', url: `redis://127.0.0.1:${port}`, commandTimeoutMs: 100 },
    upstreams: { up: { targets: [{ url: up.url }] } },
    routes: [
      { id: 'open', match: { pathPrefix: '/open' }, upstream: 'up', rateLimit: { onStoreError: 'failOpen', limits: [{ limit: 2, windowMs: 60_000 }] } },
      { id: 'closed', match: { pathPrefix: '/closed' }, upstream: 'up', rateLimit: { onStoreError: 'failClosed', limits: [{ limit: 100, windowMs: 60_000 }] } },
    ],
  }), { logger: cap.logger, events });
  gw = started.gw;
  const base = started.base;
  // Redis up: counted there
  await waitFor(async () => (await get(`${base}/closed`)).status === 200, { what: 'the gateway connected to Redis' });
  assert.equal((await get(`${base}/open`)).status, 200);

  redis.kill('SIGKILL');
  await once(redis, 'exit');

  const t0 = Date.now();
  const closed = await get(`${base}/closed`);
  assert.equal(closed.status, 503);
  assert.equal(closed.json<{ type: string }>().type, 'https://portcullis.dev/problems/rate-limit-unavailable');
  assert.equal(closed.headers['retry-after'], '1');
  assert.equal(seen.at(-1)!.reason, 'store-unavailable');
  // failOpen: the local limiter still enforces the limit, per process (its count starts from zero)
  assert.deepEqual([(await get(`${base}/open`)).status, (await get(`${base}/open`)).status, (await get(`${base}/open`)).status], [200, 200, 429]);
  assert.ok(Date.now() - t0 < 2000, 'no request waited on the dead Redis');
  assert.ok((await storeErrors('open')) >= 3);
  assert.ok((await storeErrors('closed')) >= 1);
  const logged = cap.lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('rate-limit store unavailable'));
  assert.equal(logged.length, 1, 'one log line, not one per request');
  assert.ok(!JSON.stringify(logged).includes('redis://'));
});
