import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RollingCounter } from './rolling-window.js';

test('sums the buckets inside the window and forgets older ones', () => {
  const c = new RollingCounter(10_000, 10); // 1 s buckets
  c.add(0);
  c.add(500, 2);
  c.add(3_200);
  assert.equal(c.sum(3_200), 4);
  assert.equal(c.sum(9_999), 4);
  assert.equal(c.sum(10_000), 1, 'bucket [0,1000) left the window');
  assert.equal(c.sum(12_999), 1);
  assert.equal(c.sum(13_000), 0, 'bucket [3000,4000) left the window');
});

test('a reused slot is reset before counting', () => {
  const c = new RollingCounter(1_000, 10); // 100 ms buckets, slot reused every 1 s
  c.add(50, 5);
  c.add(1_050);
  assert.equal(c.sum(1_050), 1);
});

test('reset clears everything', () => {
  const c = new RollingCounter(1_000);
  c.add(10, 3);
  c.reset();
  assert.equal(c.sum(10), 0);
});
