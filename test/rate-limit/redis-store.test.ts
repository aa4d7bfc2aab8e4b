// The Lua mirror of the rate-limit math against a real Redis: same answers as the memory store, atomic
// stacked limits, one script call (EVALSHA, EVAL after SCRIPT FLUSH), hash-tagged keys, concurrency.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { RedisStateStore } from '../../src/state/redis.js';
import { silentLogger } from '../../src/observability/logger.js';
import { ALG_FIXED, ALG_GCRA, ALG_SLIDING } from '../../src/state/rate-algorithms.js';
import type { RateCheck } from '../../src/state/types.js';
import { deleteTestKeys, testKeyPrefix } from '../helpers/redis.js';

const prefix = testKeyPrefix('rl-store');
const admin = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
const store = new RedisStateStore({ type: 'redis', url: 'redis://127.0.0.1:6379', keyPrefix: prefix }, { logger: silentLogger });
await store.ready();
after(async () => {
  await store.close();
  await admin.quit();
  await deleteTestKeys(prefix);
});

test('fixed window over Redis: 200 concurrent calls on one key admit exactly the limit', async () => {
  const c: RateCheck[] = [[ALG_FIXED, 'fw', 100, 3_600_000, 100, 0]];
  const rs = await Promise.all(Array.from({ length: 200 }, () => store.rateLimit(c)));
  assert.equal(rs.filter((r) => r[0] === 1).length, 100);
  const remaining = rs.filter((r) => r[0] === 1).map((r) => r[2]).sort((a, b) => a! - b!);
  assert.deepEqual(remaining, Array.from({ length: 100 }, (_, i) => i));
  const denied = rs.find((r) => r[0] === 0)!;
  assert.ok(denied[4]! > 0 && denied[4]! <= 3_600_000);
  assert.deepEqual(await admin.keys(`${prefix}{rl:fw}`), [`${prefix}{rl:fw}`]);
  assert.ok((await admin.pttl(`${prefix}{rl:fw}`)) > 0);
});

test('token bucket over Redis: burst, then refusal with the exact emission interval', async () => {
  const c: RateCheck[] = [[ALG_GCRA, 'tb', 1, 60_000, 5, 0]];
  const rs = await Promise.all(Array.from({ length: 8 }, () => store.rateLimit(c)));
  assert.equal(rs.filter((r) => r[0] === 1).length, 5);
  const denied = rs.filter((r) => r[0] === 0);
  // one token per 60 s: the next one is 60 s after the burst started (minus the ms elapsed since)
  for (const r of denied) assert.ok(r[4]! > 59_000 && r[4]! <= 60_000, String(r[4]));
});

test('token bucket delay mode over Redis: slots are handed out ahead, in order', async () => {
  const c: RateCheck[] = [[ALG_GCRA, 'tbd', 10, 1_000, 1, 250]];
  const rs = [];
  for (let i = 0; i < 4; i++) rs.push(await store.rateLimit(c));
  assert.deepEqual(rs.map((r) => r[0]), [1, 1, 1, 0]);
  assert.equal(rs[0]![1], 0);
  assert.ok(rs[1]![1]! > 50 && rs[1]![1]! <= 100);
  assert.ok(rs[2]![1]! > 150 && rs[2]![1]! <= 200);
});

test('sliding window over Redis admits the limit in a fresh window', async () => {
  const c: RateCheck[] = [[ALG_SLIDING, 'sw', 20, 3_600_000, 20, 0]];
  const rs = await Promise.all(Array.from({ length: 30 }, () => store.rateLimit(c)));
  assert.ok(rs.filter((r) => r[0] === 1).length <= 20);
  assert.ok(rs.filter((r) => r[0] === 1).length >= 19); // the previous-window weight is 0 for a new key
});

test('stacked limits in one script call are atomic; a flushed script cache is reloaded (NOSCRIPT → EVAL)', async () => {
  const a: RateCheck = [ALG_FIXED, 'st-a', 3, 3_600_000, 3, 0];
  const b: RateCheck = [ALG_FIXED, 'st-b', 4, 3_600_000, 4, 0];
  for (let i = 0; i < 3; i++) assert.equal((await store.rateLimit([a, b]))[0], 1);
  await admin.script('FLUSH');
  const r = await store.rateLimit([a, b]);
  assert.deepEqual([r[0], r[2], r[5]], [0, 0, 1]);
  assert.equal((await store.rateLimit([b]))[0], 1);
  assert.equal((await store.rateLimit([b]))[0], 0);
});

test('one event-loop turn of requests is one script call; each request is still decided on its own, in order', async () => {
  const calls: number[] = [];
  const orig = store.client.sendCommand.bind(store.client);
  store.client.sendCommand = ((cmd: Parameters<typeof orig>[0], ...rest: unknown[]) => {
    if (cmd.name === 'evalsha' || cmd.name === 'eval') calls.push(cmd.args.length);
    return (orig as (...a: unknown[]) => unknown)(cmd, ...rest);
  }) as typeof store.client.sendCommand;
  try {
    // Stacked limits and a per-request key, interleaved: request i checks 'bt-shared' (5) and 'bt-<i%3>' (1).
    const shared: RateCheck = [ALG_FIXED, 'bt-shared', 5, 3_600_000, 5, 0];
    const own = (i: number): RateCheck => [ALG_FIXED, `bt-${i % 3}`, 1, 3_600_000, 1, 0];
    const rs = await Promise.all(Array.from({ length: 9 }, (_, i) => store.rateLimit([shared, own(i)])));
    assert.equal(calls.length, 1, 'nine concurrent requests, one EVALSHA');
    // requests 0, 1, 2 take their own key's only unit and a shared one; the rest find their own key spent,
    // so they are refused without consuming the shared limit (it keeps 2 of 5)
    assert.deepEqual(rs.map((r) => r[0]), [1, 1, 1, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(rs.slice(0, 3).map((r) => r[2]), [4, 3, 2]);
    for (const r of rs.slice(3)) assert.deepEqual([r[2], r[5]], [2, 0]);
    assert.equal(rs[0]!.length, 8);
    // a turn larger than the per-call cap is split, and the limit still holds exactly across the calls
    calls.length = 0;
    const many = await Promise.all(Array.from({ length: 600 }, () => store.rateLimit([[ALG_FIXED, 'bt-many', 450, 3_600_000, 450, 0]])));
    assert.equal(calls.length, 3);
    assert.equal(many.filter((r) => r[0] === 1).length, 450);
  } finally {
    store.client.sendCommand = orig;
  }
});

test('expiry: set when a window begins, kept within it, renewed when the next window begins (sliding: two windows)', async () => {
  const hour: RateCheck[] = [[ALG_FIXED, 'ttl-fw', 100, 3_600_000, 100, 0]];
  await store.rateLimit(hour);
  const set = await admin.pttl(`${prefix}{rl:ttl-fw}`);
  await store.rateLimit(hour);
  assert.ok((await admin.pttl(`${prefix}{rl:ttl-fw}`)) <= set, 'same window: the expiry is not pushed out');

  const W = 300;
  const c: RateCheck[] = [[ALG_SLIDING, 'ttl-sw', 100, W, 100, 0]];
  const key = `${prefix}{rl:ttl-sw}`;
  await store.rateLimit(c);
  const first = await admin.pttl(key);
  assert.ok(first > W && first <= 2 * W, String(first));
  await new Promise((r) => setTimeout(r, W)); // into the next window (Redis's clock decides the edges)
  await store.rateLimit(c);
  // without renewal the key would expire one window after the previous window's end: under W from now
  const renewed = await admin.pttl(key);
  assert.ok(renewed > W && renewed <= 2 * W, String(renewed));
});
