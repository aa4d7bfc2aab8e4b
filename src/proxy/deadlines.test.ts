import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeadlineSweeper, sweeperFor } from './deadlines.js';

test('expires only what is past its deadline, and stops ticking when idle', async () => {
  const s = new DeadlineSweeper(10);
  const fired: string[] = [];
  const item = (name: string, inMs: number) => ({ deadline: performance.now() + inMs, dlPrev: undefined, dlNext: undefined, expire: () => { fired.push(name); } });
  const soon = item('soon', 20);
  const later = item('later', 60_000);
  const removed = item('removed', 5);
  s.add(soon); s.add(later); s.add(removed);
  s.delete(removed);
  await new Promise<void>((resolve) => { const t = setInterval(() => { if (fired.length > 0) { clearInterval(t); resolve(); } }, 5); });
  assert.deepEqual(fired, ['soon']);
  assert.equal(s.size, 1);
  s.delete(later);
  s.delete(later); // unlinking twice is harmless
  assert.equal(s.size, 0);
});

test('sweepers are shared per granularity', () => {
  assert.equal(sweeperFor(60_000), sweeperFor(30_000)); // both clamp to 1 s
  assert.notEqual(sweeperFor(100), sweeperFor(60_000));
});
