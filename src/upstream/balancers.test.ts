import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBalancer, hash32, type BalancerMember } from './balancers.js';

interface M { origin: string; weight: number; inflight: number }
const members = (...weights: number[]): M[] => weights.map((weight, i) => ({ origin: `http://10.0.0.${i + 1}:80`, weight, inflight: 0 }));
const all = (): boolean => true;

function counts(picks: number[], n: number): number[] {
  const c = new Array<number>(n).fill(0);
  for (const p of picks) c[p]!++;
  return c;
}

test('round-robin: weights 3:1 give exactly 3:1, interleaved', () => {
  const b = createBalancer('round-robin', members(3, 1));
  const picks = Array.from({ length: 400 }, () => b.pick(undefined, all));
  assert.deepEqual(counts(picks, 2), [300, 100]);
  assert.deepEqual(picks.slice(0, 8), [0, 0, 1, 0, 0, 0, 1, 0], 'smooth: the light member is spread out');
  // never more than 3 picks of member 0 in a row
  let run = 0;
  for (const p of picks) { run = p === 0 ? run + 1 : 0; assert.ok(run <= 3); }
});

test('round-robin: exact proportions for 5:2:1, weight 0 never picked', () => {
  const b = createBalancer('round-robin', members(5, 2, 1, 0));
  const picks = Array.from({ length: 800 }, () => b.pick(undefined, all));
  assert.deepEqual(counts(picks, 4), [500, 200, 100, 0]);
});

test('round-robin: ineligible members are skipped; none eligible gives -1', () => {
  const b = createBalancer('round-robin', members(1, 1, 1));
  const picks = Array.from({ length: 90 }, () => b.pick(undefined, (i) => i !== 1));
  assert.deepEqual(counts(picks, 3), [45, 0, 45]);
  assert.equal(b.pick(undefined, () => false), -1);
  assert.equal(createBalancer('round-robin', members(0, 0)).pick(undefined, all), -1);
});

test('least-requests: picks the less loaded member', () => {
  const m = members(1, 1, 1);
  const b = createBalancer('least-requests', m);
  m[0]!.inflight = 5; m[1]!.inflight = 2; m[2]!.inflight = 7;
  assert.equal(b.pick(undefined, all), 1);
  m[1]!.inflight = 9;
  assert.equal(b.pick(undefined, all), 0);
  assert.equal(b.pick(undefined, (i) => i !== 0), 2, 'the least loaded is ineligible');
});

test('least-requests: load is compared relative to weight', () => {
  const m = members(4, 1);
  const b = createBalancer('least-requests', m);
  m[0]!.inflight = 6; m[1]!.inflight = 2; // 1.5 vs 2 per weight unit
  assert.equal(b.pick(undefined, all), 0);
  m[0]!.inflight = 9; // 2.25 vs 2
  assert.equal(b.pick(undefined, all), 1);
});

test('least-requests: ties spread round-robin (by weight), not all onto the first', () => {
  const b = createBalancer('least-requests', members(1, 1, 1));
  const picks = Array.from({ length: 30 }, () => b.pick(undefined, all)); // serial traffic: inflight stays 0
  assert.deepEqual(counts(picks, 3), [10, 10, 10]);
  const w = createBalancer('least-requests', members(3, 1));
  assert.deepEqual(counts(Array.from({ length: 40 }, () => w.pick(undefined, all)), 2), [30, 10]);
});

test('least-requests: concurrent load evens out', () => {
  const m = members(1, 1, 1);
  const b = createBalancer('least-requests', m);
  for (let i = 0; i < 30; i++) m[b.pick(undefined, all)]!.inflight++;
  assert.deepEqual(m.map((x) => x.inflight), [10, 10, 10]);
});

const keys = Array.from({ length: 10_000 }, (_, i) => `client-${i}`);

test('consistent-hash: same key → same member, spread roughly by weight', () => {
  const b = createBalancer('consistent-hash', members(1, 1, 1, 1));
  const first = keys.map((k) => b.pick(k, all));
  assert.deepEqual(keys.map((k) => b.pick(k, all)), first);
  const b2 = createBalancer('consistent-hash', members(1, 1, 1, 1));
  assert.deepEqual(keys.map((k) => b2.pick(k, all)), first, 'independent of instance (derived from origins)');
  for (const c of counts(first, 4)) assert.ok(c > 1_800 && c < 3_200, `balanced: ${c}`);
  const w = createBalancer('consistent-hash', members(3, 1));
  const c = counts(keys.map((k) => w.pick(k, all)), 2);
  assert.ok(c[0]! > 6_800 && c[0]! < 8_200, `weighted: ${c.join(',')}`);
});

test('consistent-hash: removing a member only moves that member\'s keys', () => {
  const full = members(1, 1, 1, 1, 1);
  const before = keys.map((k) => full[createBalancerCache(full).pick(k, all)]!.origin);
  const without = full.filter((_, i) => i !== 2);
  const after = keys.map((k) => without[createBalancerCache(without).pick(k, all)]!.origin);
  let moved = 0;
  for (let i = 0; i < keys.length; i++) {
    if (before[i] !== after[i]) {
      moved++;
      assert.equal(before[i], full[2]!.origin, 'only keys of the removed member move');
    }
  }
  const share = moved / keys.length;
  assert.ok(share > 0.12 && share < 0.28, `about 1/5 of keys moved: ${share}`);
});

test('consistent-hash: an ineligible owner passes its keys on, the others keep theirs', () => {
  const m = members(1, 1, 1);
  const b = createBalancer('consistent-hash', m);
  const base = keys.map((k) => b.pick(k, all));
  const down = keys.map((k) => b.pick(k, (i) => i !== 0));
  for (let i = 0; i < keys.length; i++) {
    if (base[i] === 0) assert.notEqual(down[i], 0);
    else assert.equal(down[i], base[i]);
  }
  assert.equal(b.pick('x', () => false), -1);
});

test('consistent-hash: a missing key falls back to weighted round-robin', () => {
  const b = createBalancer('consistent-hash', members(1, 1));
  assert.deepEqual(counts(Array.from({ length: 10 }, () => b.pick(undefined, all)), 2), [5, 5]);
});

test('hash32 is stable and well mixed', () => {
  assert.equal(hash32('abc'), hash32('abc'));
  assert.notEqual(hash32('a-1'), hash32('a-2'));
  // neighbouring inputs should differ in about half their bits
  let bits = 0;
  for (let i = 0; i < 1000; i++) {
    let x = hash32(`n-${i}`) ^ hash32(`n-${i + 1}`);
    while (x) { bits += x & 1; x >>>= 1; }
  }
  assert.ok(bits / 1000 > 12 && bits / 1000 < 20);
});

// rings are built per member list; cache so the removal test builds each ring once
const cache = new Map<readonly BalancerMember[], ReturnType<typeof createBalancer>>();
function createBalancerCache(m: readonly BalancerMember[]): ReturnType<typeof createBalancer> {
  let b = cache.get(m);
  if (!b) { b = createBalancer('consistent-hash', m); cache.set(m, b); }
  return b;
}
