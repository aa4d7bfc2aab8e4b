import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isEjected, recordOutcome, type PassiveState } from './health-passive.js';

const cfg = { consecutiveFailures: 3, cooldownMs: 1_000 };
const fresh = (): PassiveState => ({ failures: 0, ejectedUntil: -Infinity, probation: false });

test('ejects after N consecutive failures; a success resets the count', () => {
  const s = fresh();
  assert.equal(recordOutcome(s, cfg, true, 0), null);
  assert.equal(recordOutcome(s, cfg, true, 0), null);
  assert.equal(recordOutcome(s, cfg, false, 0), null, 'success');
  assert.equal(recordOutcome(s, cfg, true, 0), null);
  assert.equal(recordOutcome(s, cfg, true, 0), null);
  assert.equal(isEjected(s, 0), false);
  assert.equal(recordOutcome(s, cfg, true, 10), 'ejected');
  assert.equal(isEjected(s, 10), true);
  assert.equal(isEjected(s, 1_009), true);
  assert.equal(isEjected(s, 1_010), false, 'eligible again after the cool-down');
});

test('outcomes while ejected are stale and ignored', () => {
  const s = fresh();
  for (let i = 0; i < 3; i++) recordOutcome(s, cfg, true, 0);
  assert.equal(recordOutcome(s, cfg, false, 500), null);
  assert.equal(recordOutcome(s, cfg, true, 500), null);
  assert.equal(s.ejectedUntil, 1_000, 'cool-down not extended');
});

test('after the cool-down one failure re-ejects (probation); one success recovers', () => {
  const s = fresh();
  for (let i = 0; i < 3; i++) recordOutcome(s, cfg, true, 0);
  assert.equal(recordOutcome(s, cfg, true, 1_000), 'ejected', 'single failure on probation');
  assert.equal(isEjected(s, 1_500), true);
  assert.equal(recordOutcome(s, cfg, false, 2_000), 'recovered');
  assert.equal(recordOutcome(s, cfg, true, 2_001), null, 'probation over: back to counting');
  assert.equal(isEjected(s, 2_001), false);
});
