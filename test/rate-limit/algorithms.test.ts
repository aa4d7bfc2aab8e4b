// The rate-limit math at its boundaries, through the memory store with an explicit clock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryState } from '../../src/state/memory.js';
import { ALG_FIXED, ALG_GCRA, ALG_SLIDING, seconds } from '../../src/state/rate-algorithms.js';
import type { RateCheck } from '../../src/state/types.js';

const W = 10_000;
const T0 = 1_700_000_000_000; // a window edge (multiple of 10 s)

function admitted(m: MemoryState, checks: RateCheck[], at: number, n: number): number {
  let ok = 0;
  for (let i = 0; i < n; i++) ok += m.rateLimit(checks, at)[0]!;
  return ok;
}

test('fixed window: exactly limit per window, the count resets at the edge, retry = time to the edge', () => {
  const m = new MemoryState();
  const c: RateCheck[] = [[ALG_FIXED, 'k', 5, W, 5, 0]];
  assert.equal(admitted(m, c, T0 + 9_000, 8), 5);
  const r = m.rateLimit(c, T0 + 9_999);
  assert.deepEqual([r[0], r[2]], [0, 0]);
  assert.equal(r[4], 1); // 1 ms to the edge
  assert.equal(seconds(r[4]!), 1);
  const first = m.rateLimit(c, T0 + W);
  assert.deepEqual([first[0], first[2], first[3]], [1, 4, W]);
  assert.equal(admitted(m, c, T0 + W + 1, 10), 4);
});

test('sliding window: the previous window weighs (1 - elapsed fraction); retry is when the weight allows one more', () => {
  const m = new MemoryState();
  const c: RateCheck[] = [[ALG_SLIDING, 'k', 10, W, 10, 0]];
  assert.equal(admitted(m, c, T0 + 5_000, 10), 10);
  // next window at 25 %: estimate = 10·0.75 + 0 → 2 more fit
  assert.equal(admitted(m, c, T0 + W + 2_500, 5), 2);
  // now cur = 2, prev = 10: one more needs 10·(1-f) + 2 + 1 ≤ 10 → f ≥ 0.3
  const r = m.rateLimit(c, T0 + W + 2_500);
  assert.equal(r[0], 0);
  assert.equal(r[4], 500);
  assert.equal(m.rateLimit(c, T0 + W + 3_000)[0], 1);
  // two windows later nothing of it counts
  assert.equal(admitted(m, c, T0 + 3 * W, 12), 10);
});

test('token bucket (GCRA): burst at once, then one per emission interval; retry is exact', () => {
  const m = new MemoryState();
  const c: RateCheck[] = [[ALG_GCRA, 'k', 10, 1_000, 3, 0]]; // 10/s, burst 3
  assert.equal(admitted(m, c, T0, 5), 3);
  const r = m.rateLimit(c, T0);
  assert.equal(r[0], 0);
  assert.equal(r[4], 100);
  assert.equal(m.rateLimit(c, T0 + 99)[0], 0);
  assert.equal(m.rateLimit(c, T0 + 100)[0], 1);
  // a full refill after burst·T of silence
  assert.equal(admitted(m, c, T0 + 1_000, 5), 3);
  // fractional emission interval (1000/3 ms) does not drift
  const f: RateCheck[] = [[ALG_GCRA, 'f', 3, 1_000, 1, 0]];
  let ok = 0;
  for (let t = 0; t < 3_000; t += 1) ok += m.rateLimit(f, T0 + t)[0]!;
  assert.equal(ok, 9);
});

test('token bucket delay mode: an over-rate request gets the next slot up to maxDelayMs', () => {
  const m = new MemoryState();
  const c: RateCheck[] = [[ALG_GCRA, 'k', 10, 1_000, 1, 250]];
  assert.deepEqual(m.rateLimit(c, T0).slice(0, 2), [1, 0]);
  assert.deepEqual(m.rateLimit(c, T0).slice(0, 2), [1, 100]);
  assert.deepEqual(m.rateLimit(c, T0).slice(0, 2), [1, 200]);
  const r = m.rateLimit(c, T0);
  assert.equal(r[0], 0);
  assert.equal(r[4], 300);
});

test('stacked limits are atomic: a refused request consumes none of them', () => {
  const m = new MemoryState();
  const perSec: RateCheck = [ALG_FIXED, 'a', 3, 1_000, 3, 0];
  const perDay: RateCheck = [ALG_FIXED, 'b', 4, 86_400_000, 4, 0];
  assert.equal(admitted(m, [perSec, perDay], T0, 10), 3);
  const r = m.rateLimit([perSec, perDay], T0);
  assert.deepEqual([r[0], r[2], r[5]], [0, 0, 1]); // second limit still has 1
  assert.equal(admitted(m, [perSec, perDay], T0 + 1_000, 10), 1);
  assert.equal(m.rateKeys(), 2);
});

test('expired counters are swept as operations go by', () => {
  const m = new MemoryState();
  for (let i = 0; i < 50; i++) m.rateLimit([[ALG_FIXED, `k${i}`, 1, 1_000, 1, 0]], T0);
  for (let i = 0; i < 50; i++) m.rateLimit([[ALG_FIXED, 'x', 100, 1_000, 1, 0]], T0 + 5_000);
  assert.equal(m.rateKeys(), 1);
});

test('at the key cap a flood of fresh client keys evicts idle keys, never a busy route-wide one (no reset by flooding)', () => {
  const m = new MemoryState(4);
  const route: RateCheck = [ALG_FIXED, 'route', 3, 60_000, 3, 0];
  const perClient = (ip: string): RateCheck => [ALG_FIXED, `ip|${ip}`, 100, 60_000, 100, 0];
  for (let i = 0; i < 3; i++) assert.equal(m.rateLimit([route], T0)[0], 1);
  assert.equal(m.rateLimit([route], T0)[0], 0, 'route limit spent');
  // the attacker rotates addresses (an IPv6 /64 has plenty); each fresh key would push out the oldest
  for (let i = 0; i < 20; i++) {
    m.rateLimit([perClient(`2001:db8::${i}`)], T0 + i);
    assert.equal(m.rateLimit([route], T0 + i)[0], 0, `still spent after ${i + 1} fresh keys`);
  }
  assert.ok(m.stats().evictedLiveRates > 0, 'live evictions are counted');
});
