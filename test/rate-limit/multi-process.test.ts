// Limits hold for the whole node and across nodes: one gateway process with 2 cluster workers and the
// memory store (the primary owns the counters), and two gateway processes sharing one Redis.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Agent, request } from 'undici';
import { Redis } from 'ioredis';
import type { GatewayConfig } from '../../src/config/schema.js';
import { config } from '../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { startGatewayProcess, stopGatewayProcess, type GatewayProcess } from '../helpers/process.js';

const LIMIT = 20;
const prefix = `ptest-rl-mp-${randomUUID().slice(0, 8)}:`;
let up: TestUpstream;
let dir: string;
type Started = Awaited<ReturnType<typeof startProcess>>;
let cluster: Started;
let redisA: Started;
let redisB: Started;
// many connections: the cluster primary hands each new connection to the next worker
const agent = new Agent({ connections: 64, pipelining: 0 });

function gatewayConfig(extra: Partial<GatewayConfig> = {}): GatewayConfig {
  return config({
    upstreams: { app: { targets: [{ url: up.url }] } },
    routes: ['fixed-window', 'token-bucket', 'sliding-window'].map((algorithm) => ({
      id: algorithm, match: { pathPrefix: `/${algorithm}` }, upstream: 'app',
      rateLimit: { limits: [{ algorithm: algorithm as 'fixed-window', limit: LIMIT, windowMs: 600_000, by: ['route' as const] }] },
    })),
    ...extra,
  });
}

before(async () => {
  up = await startUpstream('app');
  dir = await mkdtemp(join(tmpdir(), 'portcullis-rl-'));
  const state = { type: 'redis' as const, url: 'redis://127.0.0.1:6379', keyPrefix: prefix };
  [cluster, redisA, redisB] = await Promise.all([
    startProcess('cluster', { ...gatewayConfig(), server: { workers: 2 } }),
    startProcess('redis-a', gatewayConfig({ state })),
    startProcess('redis-b', gatewayConfig({ state })),
  ]);
});
after(async () => {
  await Promise.all([cluster, redisA, redisB].filter((x) => x !== undefined).map((x) => stop(x.p)));
  await agent.close();
  await up.close();
  await rm(dir, { recursive: true, force: true });
  const admin = new Redis('redis://127.0.0.1:6379');
  const keys = await admin.keys(`${prefix}*`);
  if (keys.length > 0) await admin.del(...keys);
  await admin.quit();
});

const startProcess = (name: string, cfg: GatewayConfig) => startGatewayProcess(dir, name, cfg);
const stop = stopGatewayProcess;

async function status(url: string): Promise<number> {
  const r = await request(url, { dispatcher: agent, reset: true });
  await r.body.dump();
  return r.statusCode;
}

/** 3×LIMIT concurrent requests spread over `origins`; the number admitted. */
async function burst(origins: string[], path: string): Promise<number> {
  const rs = await Promise.all(Array.from({ length: 3 * LIMIT }, (_, i) => status(`${origins[i % origins.length]}${path}`)));
  assert.deepEqual(new Set(rs.filter((s) => s !== 200)), new Set([429]));
  return rs.filter((s) => s === 200).length;
}

test('cluster mode (2 workers, memory store): the limit holds for the node, both workers refuse', async () => {
  assert.equal(await burst([cluster.origin], '/fixed-window'), LIMIT);
  assert.equal(await burst([cluster.origin], '/token-bucket'), LIMIT);
  const sliding = await burst([cluster.origin], '/sliding-window');
  assert.ok(sliding <= LIMIT && sliding >= LIMIT - 1, String(sliding));
  const refusedBy = new Set(cluster.p.lines.filter((l) => l.event === 'security' && l.type === 'rate-limit').map((l) => l.pid));
  assert.deepEqual([...refusedBy].sort(), [...cluster.pids].sort());
});

test('two gateway processes sharing Redis: the limit holds across them', async () => {
  const origins = [redisA.origin, redisB.origin];
  assert.equal(await burst(origins, '/fixed-window'), LIMIT);
  assert.equal(await burst(origins, '/token-bucket'), LIMIT);
  const sliding = await burst(origins, '/sliding-window');
  assert.ok(sliding <= LIMIT && sliding >= LIMIT - 1, String(sliding));
  for (const g of [redisA, redisB]) assert.ok(g.p.lines.some((l) => l.event === 'security' && l.type === 'rate-limit'));
});
