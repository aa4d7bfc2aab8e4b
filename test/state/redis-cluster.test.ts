// The state store on a real three-master Redis Cluster: limits exact per key, a request whose limits live
// in different hash slots (one script call per slot, merged), DPoP's claimOnce, a gateway configured
// with `state.type: redis-cluster`, and that gateway when the whole cluster dies (last test).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster } from 'ioredis';
import calculateSlot from 'cluster-key-slot';
import { RedisStateStore, redisKey } from '../../src/state/redis.js';
import { silentLogger } from '../../src/observability/logger.js';
import { ALG_FIXED } from '../../src/state/rate-algorithms.js';
import type { RateCheck } from '../../src/state/types.js';
import type { GatewayConfig } from '../../src/config/schema.js';
import { startRedisCluster } from '../helpers/redis-cluster.js';
import { startGateway, config, get } from '../helpers/gateway.js';
import { startUpstream } from '../helpers/upstream.js';

const rc = await startRedisCluster();
const prefix = 'pcl:';
const store = new RedisStateStore({ type: 'redis-cluster', nodes: [rc.nodes[0]!], keyPrefix: prefix }, { logger: silentLogger });
await store.ready();
after(async () => { await store.close(); await rc.close(); });

/** Two logical rate-limit keys whose Redis keys hash to slots served by different masters. */
async function keysOnTwoNodes(): Promise<[string, string]> {
  const admin = new Cluster([{ host: '127.0.0.1', port: rc.ports[0]! }]);
  try {
    const slots = await admin.cluster('SLOTS');
    const portOf = (slot: number): number => slots.find(([lo, hi]) => slot >= lo && slot <= hi)![2]![1];
    const a = 'x-0';
    const pa = portOf(calculateSlot(redisKey(prefix, 'rl:' + a)));
    for (let i = 1; ; i++) {
      const b = `x-${i}`;
      if (portOf(calculateSlot(redisKey(prefix, 'rl:' + b))) !== pa) return [a, b];
    }
  } finally {
    admin.disconnect();
  }
}

test('redis-cluster: 200 concurrent calls on one key admit exactly the limit', async () => {
  const c: RateCheck[] = [[ALG_FIXED, 'one-key', 100, 3_600_000, 100, 0]];
  const rs = await Promise.all(Array.from({ length: 200 }, () => store.rateLimit(c)));
  assert.equal(rs.filter((r) => r[0] === 1).length, 100);
});

test('redis-cluster: a request whose limits live on two nodes is decided per slot and merged in check order', async () => {
  const [ka, kb] = await keysOnTwoNodes();
  const a: RateCheck = [ALG_FIXED, ka, 3, 3_600_000, 3, 0];
  const b: RateCheck = [ALG_FIXED, kb, 10, 3_600_000, 10, 0];
  const rs = await Promise.all(Array.from({ length: 5 }, () => store.rateLimit([a, b])));
  assert.deepEqual(rs.map((r) => r[0]), [1, 1, 1, 0, 0]);
  assert.deepEqual(rs.slice(0, 3).map((r) => [r[2], r[5]]), [[2, 9], [1, 8], [0, 7]]);
  // Across slots each part is atomic on its own: the refused requests still counted in b (documented).
  for (const r of rs.slice(3)) { assert.equal(r[2], 0); assert.ok(r[4]! > 0); assert.equal(r.length, 8); }
  const after = await store.rateLimit([b]);
  assert.deepEqual([after[0], after[2]], [1, 4]);
});

test('redis-cluster: claimOnce (DPoP replay cache) holds', async () => {
  assert.equal(await store.claimOnce('dpop:jti-1', 5_000), true);
  assert.equal(await store.claimOnce('dpop:jti-1', 5_000), false);
});

test('a gateway on state.type redis-cluster: stacked per-IP and per-route limits, 429 after the limit', async () => {
  const up = await startUpstream('rc');
  const { gw, base } = await startGateway(config({
    state: { type: 'redis-cluster', nodes: [...rc.nodes], keyPrefix: 'pcg:' },
    upstreams: { up: { targets: [{ url: up.url }] } },
    routes: [{ id: 'rc', match: { pathPrefix: '/' }, upstream: 'up', rateLimit: { onStoreError: 'failClosed', limits: [{ name: 'ip', limit: 2, windowMs: 60_000 }, { name: 'all', limit: 100, windowMs: 60_000, by: ['route'] }] } }],
  } as Partial<GatewayConfig> as GatewayConfig));
  try {
    const r1 = await get(`${base}/a`);
    assert.equal(r1.status, 200);
    assert.match(String(r1.headers.ratelimit), /^"ip";r=1;t=\d+, "all";r=99;t=\d+$/);
    assert.equal((await get(`${base}/a`)).status, 200);
    const r3 = await get(`${base}/a`);
    assert.equal(r3.status, 429);
    assert.ok(Number(r3.headers['retry-after']) >= 1);
    // the counters are in the cluster (not in a memory store)
    const admin = new Cluster([{ host: '127.0.0.1', port: rc.ports[0]! }]);
    try {
      assert.deepEqual(await admin.hmget('pcg:{rl:rl:rc:0:f|i:127.0.0.1}', 'b'), ['2']);
      // the route's counter lives in another slot: the refused third request counted there too
      assert.notEqual(calculateSlot('pcg:{rl:rl:rc:0:f|i:127.0.0.1}'), calculateSlot('pcg:{rl:rl:rc:1:f|r:rc}'));
      assert.deepEqual(await admin.hmget('pcg:{rl:rl:rc:1:f|r:rc}', 'b'), ['3']);
    } finally {
      admin.disconnect();
    }
  } finally {
    await gw.close(0);
    await up.close();
  }
});

test('the whole cluster killed under a running gateway: failClosed answers 503 and failOpen falls back, neither hangs', async () => {
  const up = await startUpstream('rc-down');
  const limits = [{ limit: 100, windowMs: 60_000 }];
  const { gw, base } = await startGateway(config({
    state: { type: 'redis-cluster', nodes: [...rc.nodes], keyPrefix: 'pcd:', commandTimeoutMs: 200 },
    upstreams: { up: { targets: [{ url: up.url }] } },
    routes: [
      { id: 'closed', match: { pathPrefix: '/closed' }, upstream: 'up', rateLimit: { onStoreError: 'failClosed', limits } },
      { id: 'open', match: { pathPrefix: '/open' }, upstream: 'up', rateLimit: { onStoreError: 'failOpen', limits } },
    ],
  } as Partial<GatewayConfig> as GatewayConfig));
  try {
    assert.equal((await get(`${base}/closed`)).status, 200);
    await rc.close();
    const t0 = performance.now();
    const [closed, open] = await Promise.all([get(`${base}/closed`), get(`${base}/open`)]);
    const ms = performance.now() - t0;
    assert.equal(closed.status, 503);
    assert.equal(closed.json<{ type: string }>().type.endsWith('/rate-limit-unavailable'), true);
    assert.equal(open.status, 200);
    assert.match(String(open.headers.ratelimit), /r=99;/, 'the local fallback limiter decided');
    // bounded by the command timeout (200 ms) plus ioredis noticing the dead sockets, never a hang
    assert.ok(ms < 2_000, `${ms} ms`);
  } finally {
    await gw.close(0);
    await up.close();
  }
});
