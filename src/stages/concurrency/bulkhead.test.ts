import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KeyedGate, SharedGate, bulkheadStats, type GateWaiter } from './bulkhead.js';

function waiter(log: string[], name: string): GateWaiter {
  return { granted: () => log.push(`${name} granted`), abandoned: () => log.push(`${name} abandoned`) };
}

describe('SharedGate', () => {
  it('admits up to maxInFlight, then hands released slots to waiters in arrival order', () => {
    const g = new SharedGate('t:shared', { maxInFlight: 2, maxQueue: 2, maxWaitMs: 1000 });
    assert.equal(g.tryAcquire(), true);
    assert.equal(g.tryAcquire(), true);
    assert.equal(g.tryAcquire(), false);
    const log: string[] = [];
    assert.equal(g.enqueue('', false, waiter(log, 'a')), true);
    assert.equal(g.enqueue('', false, waiter(log, 'b')), true);
    assert.equal(g.enqueue('', false, waiter(log, 'c')), false, 'queue full');
    g.release();
    assert.deepEqual(log, ['a granted']);
    // The handed-over slot still counts: a newcomer does not overtake b.
    assert.equal(g.tryAcquire(), false);
    assert.deepEqual(g.stats(), { name: 't:shared', inFlight: 2, queued: 1, keys: 0 });
    g.release();
    g.release();
    g.release();
    assert.deepEqual(log, ['a granted', 'b granted']);
    assert.equal(g.stats().inFlight, 0);
    void g.close();
  });

  it('a waiter that leaves the queue is never granted; close abandons the rest', async () => {
    const g = new SharedGate('t:leave', { maxInFlight: 1, maxQueue: 5, maxWaitMs: 1000 });
    g.tryAcquire();
    const log: string[] = [];
    const a = waiter(log, 'a');
    g.enqueue('', false, a);
    g.enqueue('', false, waiter(log, 'b'));
    g.dequeue('', false, a);
    g.enqueue('', false, waiter(log, 'c'));
    g.release();
    assert.deepEqual(log, ['b granted']);
    assert.ok(bulkheadStats().some((s) => s.name === 't:leave'));
    await g.close();
    assert.deepEqual(log, ['b granted', 'c abandoned']);
    assert.ok(!bulkheadStats().some((s) => s.name === 't:leave'), 'closed gates leave the stats');
  });
});

describe('KeyedGate', () => {
  it('limits each key separately and forgets keys at zero', () => {
    const g = new KeyedGate('t:keyed', { maxInFlight: 1, maxQueue: 0, maxWaitMs: 1000 });
    assert.equal(g.tryAcquire('alice', false), true);
    assert.equal(g.tryAcquire('alice', false), false);
    assert.equal(g.tryAcquire('bob', false), true);
    assert.equal(g.enqueue('alice', false, waiter([], 'x')), false, 'no waiting room configured');
    assert.deepEqual(g.stats(), { name: 't:keyed', inFlight: 2, queued: 0, keys: 2 });
    g.release('alice', false);
    g.release('bob', false);
    g.release('bob', false); // extra release of an unknown key: no negative count
    assert.deepEqual(g.stats(), { name: 't:keyed', inFlight: 0, queued: 0, keys: 0 });
    void g.close();
  });

  it('keeps identities and client IPs apart: a subject that reads like an IP does not share its slots', () => {
    const g = new KeyedGate('t:spaces', { maxInFlight: 1, maxQueue: 0, maxWaitMs: 1000 });
    assert.equal(g.tryAcquire('203.0.113.5', true), true);
    assert.equal(g.tryAcquire('203.0.113.5', false), true);
    assert.equal(g.tryAcquire('203.0.113.5', true), false);
    void g.close();
  });

  it('has one waiting room per key', () => {
    const g = new KeyedGate('t:rooms', { maxInFlight: 1, maxQueue: 1, maxWaitMs: 1000 });
    const log: string[] = [];
    g.tryAcquire('a', false);
    g.tryAcquire('b', false);
    assert.equal(g.enqueue('a', false, waiter(log, 'a1')), true);
    assert.equal(g.enqueue('a', false, waiter(log, 'a2')), false, "a's room is full");
    assert.equal(g.enqueue('b', false, waiter(log, 'b1')), true, "b's room is not a's");
    g.release('b', false);
    assert.deepEqual(log, ['b1 granted']);
    g.release('b', false);
    g.release('a', false);
    g.release('a', false);
    assert.deepEqual(log, ['b1 granted', 'a1 granted']);
    assert.deepEqual(g.stats(), { name: 't:rooms', inFlight: 0, queued: 0, keys: 0 });
    void g.close();
  });
});
