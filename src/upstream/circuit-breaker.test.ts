import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CircuitBreaker, type BreakerSettings, type BreakerTransition } from './circuit-breaker.js';

const settings: BreakerSettings = { failureRatio: 0.5, minRequests: 10, windowMs: 10_000, openMs: 5_000, halfOpenRequests: 1 };

function setup(s: Partial<BreakerSettings> = {}): { b: CircuitBreaker; log: string[] } {
  const log: string[] = [];
  const b = new CircuitBreaker({ ...settings, ...s }, (t: BreakerTransition) => log.push(t.to));
  return { b, log };
}

/** one full request: pass check, begin, end */
function call(b: CircuitBreaker, failed: boolean, now: number): boolean {
  if (!b.canPass(now)) return false;
  b.onBegin();
  b.onEnd(failed, now);
  return true;
}

test('stays closed below minRequests even when everything fails', () => {
  const { b, log } = setup();
  for (let i = 0; i < 9; i++) call(b, true, 0);
  assert.equal(b.state, 'closed');
  assert.deepEqual(log, []);
});

test('opens when the failure ratio is reached, refuses while open', () => {
  const { b, log } = setup();
  for (let i = 0; i < 5; i++) call(b, false, 0);
  for (let i = 0; i < 4; i++) call(b, true, 0);
  assert.equal(b.state, 'closed', '4/9 failed, too few requests anyway');
  call(b, true, 0); // 5/10
  assert.equal(b.state, 'open');
  assert.deepEqual(log, ['open']);
  assert.equal(b.canPass(4_999), false);
});

test('below the ratio stays closed', () => {
  const { b } = setup();
  for (let i = 0; i < 6; i++) call(b, false, 0);
  for (let i = 0; i < 4; i++) call(b, true, 0);
  assert.equal(b.state, 'closed');
});

test('failures older than the window do not count', () => {
  const { b } = setup();
  for (let i = 0; i < 9; i++) call(b, true, 0);
  for (let i = 0; i < 9; i++) call(b, false, 10_000);
  call(b, true, 10_000); // 1/10 in the window
  assert.equal(b.state, 'closed');
});

test('open → half-open after openMs → one trial; success closes', () => {
  const { b, log } = setup();
  for (let i = 0; i < 10; i++) call(b, true, 0);
  assert.equal(b.canPass(5_000), true);
  assert.equal(b.state, 'half-open');
  b.onBegin();
  assert.equal(b.canPass(5_000), false, 'only one trial while half-open');
  b.onEnd(false, 5_010);
  assert.equal(b.state, 'closed');
  assert.deepEqual(log, ['open', 'half-open', 'closed']);
  // the window starts afresh after closing
  for (let i = 0; i < 9; i++) call(b, true, 5_020);
  assert.equal(b.state, 'closed');
});

test('half-open trial failure re-opens for another openMs', () => {
  const { b, log } = setup();
  for (let i = 0; i < 10; i++) call(b, true, 0);
  assert.equal(call(b, true, 5_000), true);
  assert.equal(b.state, 'open');
  assert.equal(b.canPass(9_999), false);
  assert.equal(b.canPass(10_000), true);
  assert.deepEqual(log, ['open', 'half-open', 'open', 'half-open']);
});

test('ends of requests started before opening are ignored while open and before the first trial', () => {
  const { b } = setup();
  for (let i = 0; i < 3; i++) b.onBegin(); // long-running requests
  for (let i = 0; i < 10; i++) call(b, true, 0);
  b.onEnd(true, 1_000); // while open
  assert.equal(b.canPass(1_000), false);
  assert.equal(b.canPass(5_000), true); // half-open, no trial yet
  b.onEnd(false, 5_000);
  b.onEnd(true, 5_000);
  assert.equal(b.state, 'half-open');
});

test('halfOpenRequests: N successful trials needed; a cancelled trial frees its slot', () => {
  const { b } = setup({ halfOpenRequests: 2 });
  for (let i = 0; i < 10; i++) call(b, true, 0);
  assert.equal(b.canPass(5_000), true);
  b.onBegin();
  assert.equal(b.canPass(5_000), true);
  b.onBegin();
  assert.equal(b.canPass(5_000), false);
  b.onCancel();
  assert.equal(b.canPass(5_000), true);
  b.onBegin();
  b.onEnd(false, 5_000);
  assert.equal(b.state, 'half-open');
  b.onEnd(false, 5_000);
  assert.equal(b.state, 'closed');
});
