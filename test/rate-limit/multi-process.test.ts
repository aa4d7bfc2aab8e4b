// Limits hold for the whole node and across nodes: one gateway process with 2 cluster workers and the
// memory store (the primary owns the counters), and two gateway processes sharing one Redis.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'undici';
import type { GatewayConfig } from '../../src/config/schema.js';
import { config } from '../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { startNodeTrio, type NodeTrio } from '../helpers/process.js';

const LIMIT = 20;
let up: TestUpstream;
let nodes: NodeTrio;
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
  nodes = await startNodeTrio('rl-mp', gatewayConfig);
});
after(async () => {
  await nodes?.close();
  await agent.close();
  await up.close();
});

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
  assert.equal(await burst([nodes.cluster.origin], '/fixed-window'), LIMIT);
  assert.equal(await burst([nodes.cluster.origin], '/token-bucket'), LIMIT);
  const sliding = await burst([nodes.cluster.origin], '/sliding-window');
  assert.ok(sliding <= LIMIT && sliding >= LIMIT - 1, String(sliding));
  const refusedBy = new Set(nodes.cluster.p.lines.filter((l) => l.event === 'security' && l.type === 'rate-limit').map((l) => l.pid));
  assert.deepEqual([...refusedBy].sort(), [...nodes.cluster.pids].sort());
});

test('two gateway processes sharing Redis: the limit holds across them', async () => {
  const origins = [nodes.redisA.origin, nodes.redisB.origin];
  assert.equal(await burst(origins, '/fixed-window'), LIMIT);
  assert.equal(await burst(origins, '/token-bucket'), LIMIT);
  const sliding = await burst(origins, '/sliding-window');
  assert.ok(sliding <= LIMIT && sliding >= LIMIT - 1, String(sliding));
  for (const g of [nodes.redisA, nodes.redisB]) assert.ok(g.p.lines.some((l) => l.event === 'security' && l.type === 'rate-limit'));
});
