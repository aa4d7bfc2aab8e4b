import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeadlineSweeper, sweeperFor } from './deadlines.js';

test('expires only what is past its deadline, and stops ticking when idle', async () => {
  const s = new DeadlineSweeper(10);
  const fired: string[] = [];
  const soon = { deadline: performance.now() + 20, expire: () => fired.push('soon') };
  const later = { deadline: performance.now() + 60_000, expire: () => fired.push('later') };
  const removed = { deadline: performance.now() + 5, expire: () => fired.push('removed') };
  s.add(soon); s.add(later); s.add(removed);
  s.delete(removed);
  await new Promise<void>((resolve) => { const t = setInterval(() => { if (fired.length > 0) { clearInterval(t); resolve(); } }, 5); });
  assert.deepEqual(fired, ['soon']);
  assert.equal(s.size, 1);
  s.delete(later);
  assert.equal(s.size, 0);
});

test('sweepers are shared per granularity', () => {
  assert.equal(sweeperFor(60_000), sweeperFor(30_000)); // both clamp to 1 s
  assert.notEqual(sweeperFor(100), sweeperFor(60_000));
});
