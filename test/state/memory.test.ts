// The embedded memory store: claim-once semantics, expiry, incremental sweep and the entry cap.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryState, LocalMemoryStore } from '../../src/state/memory.js';
import { createStateStore, memoryStorePlacement } from '../../src/state/index.js';

test('claimOnce: first use true, replay false, free again after the TTL', () => {
  const m = new MemoryState();
  assert.equal(m.claimOnce('a', 1000, 0), true);
  assert.equal(m.claimOnce('a', 1000, 500), false);
  assert.equal(m.claimOnce('b', 1000, 500), true);
  assert.equal(m.claimOnce('a', 1000, 999), false);
  assert.equal(m.claimOnce('a', 1000, 1000), true, 'expired marker is reclaimable');
  assert.equal(m.claimOnce('a', 1000, 1500), false);
});

test('expired entries are swept incrementally by later operations', () => {
  const m = new MemoryState();
  for (let i = 0; i < 1000; i++) m.claimOnce(`k${i}`, 100, 0);
  assert.equal(m.stats().entries, 1000);
  // every operation advances the sweep cursor by a few entries: ~250 operations clear the rest
  for (let i = 0; i < 400; i++) m.claimOnce(`late${i}`, 10_000, 200);
  assert.equal(m.stats().entries, 400, 'only the live entries remain');
});

test('at the cap the oldest entry is evicted (and counted when still live)', () => {
  const m = new MemoryState(3);
  m.claimOnce('a', 10_000, 0);
  m.claimOnce('b', 10_000, 0);
  m.claimOnce('c', 10_000, 0);
  assert.equal(m.claimOnce('d', 10_000, 1), true);
  assert.deepEqual(m.stats(), { entries: 3, evictedLive: 1, evictedLiveRates: 0 });
  assert.equal(m.claimOnce('a', 10_000, 2), true, 'evicted marker is forgotten');
  assert.equal(m.claimOnce('d', 10_000, 2), false);
});

test('LocalMemoryStore is the default store outside a cluster worker', async () => {
  const s = createStateStore(undefined);
  assert.ok(s instanceof LocalMemoryStore);
  assert.equal(s.kind, 'memory');
  await s.ready();
  assert.equal(await s.claimOnce('x', 1000), true);
  assert.equal(await s.claimOnce('x', 1000), false);
  await s.close();
});

test('memory store placement: in-process unless the worker shares its node with other workers', () => {
  assert.equal(memoryStorePlacement(false, false, undefined), 'local');
  assert.equal(memoryStorePlacement(true, true, '1'), 'local');
  assert.equal(memoryStorePlacement(true, true, '2'), 'primary');
  // unknown worker count: the safe choice is the node-wide store
  assert.equal(memoryStorePlacement(true, true, undefined), 'primary');
  assert.equal(memoryStorePlacement(true, false, '2'), 'local');
});
