// The cluster memory store's IPC protocol, worker side (StateChannel) against the primary (StatePrimary)
// over an in-process port: batching, replies, timeouts, a closed channel. The real node:cluster channel is
// covered end to end by test/identity/dpop-e2e.test.ts (DPoP replay across two workers).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StateChannel, StatePrimary, IpcStateStore, type StatePort, type StateRequestMessage } from '../../src/state/cluster.js';

/** A port whose messages reach `primary` on the next turn (like a pipe); counts the messages sent. */
function loopback(primary: StatePrimary | undefined): StatePort & { sent: StateRequestMessage[] } {
  let deliver: ((m: unknown) => void) | undefined;
  const sent: StateRequestMessage[] = [];
  return {
    sent,
    send(m) {
      sent.push(m);
      const copy = JSON.parse(JSON.stringify(m)) as unknown; // what the 'json' IPC serialization does
      if (primary !== undefined) setImmediate(() => deliver?.(JSON.parse(JSON.stringify(primary.handle(copy)))));
    },
    onMessage(fn) { deliver = fn; },
  };
}

test('two workers share the primary store: a key is claimed once across them', async () => {
  const primary = new StatePrimary();
  const a = new IpcStateStore(new StateChannel(loopback(primary)));
  const b = new IpcStateStore(new StateChannel(loopback(primary)));
  assert.equal(await a.claimOnce('jti-1', 60_000), true);
  assert.equal(await b.claimOnce('jti-1', 60_000), false);
  assert.equal(await b.claimOnce('jti-2', 60_000), true);
  assert.equal(await a.claimOnce('jti-2', 60_000), false);
});

test('operations of one event-loop turn travel in one message, each gets its own answer', async () => {
  const port = loopback(new StatePrimary());
  const ch = new StateChannel(port);
  const store = new IpcStateStore(ch);
  const results = await Promise.all([store.claimOnce('k', 1000), store.claimOnce('k', 1000), store.claimOnce('j', 1000)]);
  assert.deepEqual(results, [true, false, true]);
  assert.equal(port.sent.length, 1);
  assert.equal(port.sent[0]!.batch.length, 3);
  assert.equal(ch.inFlight, 0);
});

test('no answer within the timeout: the call rejects and nothing stays pending', async () => {
  const ch = new StateChannel(loopback(undefined), 50);
  const t0 = Date.now();
  await assert.rejects(new IpcStateStore(ch).claimOnce('k', 1000), /did not answer within 50 ms/);
  assert.ok(Date.now() - t0 < 1000);
  assert.equal(ch.inFlight, 0);
});

test('a closed channel rejects at once', async () => {
  const port: StatePort = { send() { throw new Error('channel closed'); }, onMessage() {} };
  const ch = new StateChannel(port, 5000);
  await assert.rejects(new IpcStateStore(ch).claimOnce('k', 1000), /channel closed/);
  assert.equal(ch.inFlight, 0);
});

test('the primary answers malformed operations with an error and ignores foreign messages', async () => {
  const primary = new StatePrimary();
  assert.equal(primary.handle({ type: 'hello' }), undefined);
  assert.equal(primary.handle(null), undefined);
  const r = primary.handle({ type: 'state', batch: [[1, { op: 'claimOnce', key: 'k', ttlMs: -1 }], [2, { op: 'nope' }], 'junk', [3, { op: 'claimOnce', key: 'k', ttlMs: 10 }]] });
  assert.deepEqual(r?.replies, [[1, false, 'malformed state operation'], [2, false, 'malformed state operation'], [3, true, true]]);
  // an error reply rejects the caller's promise
  const port: StatePort = { send(m, _e) { setImmediate(() => deliver?.({ type: 'state', replies: m.batch.map(([id]) => [id, false, 'boom']) })); }, onMessage(fn) { deliver = fn; } };
  let deliver: ((m: unknown) => void) | undefined;
  await assert.rejects(new IpcStateStore(new StateChannel(port)).claimOnce('k', 1000), /boom/);
});
