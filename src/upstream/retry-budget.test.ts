import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RetryBudget } from './retry-budget.js';

/** Acquire retries until refused; each acquired retry is then begun, as the proxy does. */
const drain = (b: RetryBudget, now: number, max = 1000): number => {
  let n = 0;
  while (n < max && b.tryAcquire(now)) { b.noteAttempt(now); n++; }
  return n;
};

test('ratio: 100 requests allow 20 retries at 0.2, then the budget is exhausted', () => {
  const b = new RetryBudget(0.2, 0);
  for (let i = 0; i < 100; i++) b.noteAttempt(1_000);
  assert.equal(drain(b, 1_000), 20);
  // drain() began the 20 retries (begin() counts every attempt): they must not refill the budget.
  assert.equal(b.tryAcquire(1_000), false);
  // More original traffic earns more retries.
  for (let i = 0; i < 10; i++) b.noteAttempt(1_000);
  assert.equal(drain(b, 1_000), 2);
});

test('floor: minRetriesPerSecond * 10 s retries even without traffic; they expire with the window', () => {
  const b = new RetryBudget(0.2, 3);
  assert.equal(drain(b, 0), 30);
  assert.equal(b.tryAcquire(9_999), false);
  assert.equal(drain(b, 10_000), 30, 'the window moved past the first retries');
});

test('ratio 0 and no floor: never retry', () => {
  const b = new RetryBudget(0, 0);
  for (let i = 0; i < 100; i++) b.noteAttempt(0);
  assert.equal(b.tryAcquire(0), false);
});
