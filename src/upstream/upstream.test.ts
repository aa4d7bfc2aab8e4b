import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { UpstreamConfig } from '../config/schema.js';
import type { ManagedUpstream, UpstreamTarget } from './types.js';
import { createUpstream } from './upstream.js';
import { eventLog, fakeClock, startServer } from './testing/helpers.js';

// Pools connect lazily: these origins are never dialled by the tests that don't send requests.
const A = 'http://127.0.0.1:1';
const B = 'http://127.0.0.1:2';

async function using<T>(up: ManagedUpstream, fn: (up: ManagedUpstream) => T | Promise<T>): Promise<T> {
  try { return await fn(up); } finally { await up.close(); }
}

const fail503 = { kind: 'response', status: 503 } as const;
const ok200 = { kind: 'response', status: 200 } as const;

/** pick + begin + end, as the proxy does for one attempt */
function attempt(up: ManagedUpstream, outcome: Parameters<ManagedUpstream['end']>[1], exclude?: UpstreamTarget[]): UpstreamTarget | null {
  const t = up.pick(undefined, exclude);
  if (t) { up.begin(t); up.end(t, outcome); }
  return t;
}

test('compiles targets, defaults and hashOn', async () => {
  await using(createUpstream('api', { targets: [{ url: 'http://localhost:8080/' }, { url: 'https://api.example:443', weight: 3 }] }), (up) => {
    assert.equal(up.name, 'api');
    assert.deepEqual(up.targets.map((t) => [t.origin, t.host, t.weight, t.healthy, t.inflight]), [
      ['http://localhost:8080', 'localhost:8080', 1, true, 0],
      ['https://api.example', 'api.example', 3, true, 0],
    ]);
    assert.deepEqual(up.timeouts, { connectMs: 5_000, firstByteMs: 30_000, totalMs: 60_000 });
    assert.equal(up.retry.attempts, 1);
    assert.deepEqual([...up.retry.retryOnStatus], [502, 503]);
    assert.equal(up.hashOn, undefined);
    assert.equal(up.isReady(), true);
  });
  const ch = (hashOn?: UpstreamConfig['hashOn']) => createUpstream('h', { targets: [{ url: A }], balancer: 'consistent-hash', ...(hashOn ? { hashOn } : {}) });
  await using(ch({ header: 'X-User' }), (up) => assert.deepEqual(up.hashOn, { kind: 'header', name: 'x-user' }));
  await using(ch({ cookie: 'sid' }), (up) => assert.deepEqual(up.hashOn, { kind: 'cookie', name: 'sid' }));
  await using(ch({ clientIp: true }), (up) => assert.deepEqual(up.hashOn, { kind: 'clientIp' }));
  await using(ch(), (up) => assert.deepEqual(up.hashOn, { kind: 'clientIp' }));
  await using(createUpstream('t', {
    targets: [{ url: A }],
    timeouts: { connectMs: 100, firstByteMs: 200, totalMs: 0 },
    retries: { attempts: 3, retryOnStatus: [500] },
  }), (up) => {
    assert.deepEqual(up.timeouts, { connectMs: 100, firstByteMs: 200, totalMs: 0 });
    assert.equal(up.retry.attempts, 3);
    assert.deepEqual([...up.retry.retryOnStatus], [500]);
  });
});

test('exclude skips tried targets unless nothing else is left', async () => {
  await using(createUpstream('api', { targets: [{ url: A }, { url: B }] }), (up) => {
    const [a, b] = up.targets;
    for (let i = 0; i < 5; i++) assert.equal(up.pick(undefined, [a!]), b);
    assert.ok(up.pick(undefined, [a!, b!]), 'a tried target beats no target');
  });
});

test('consistent-hash through the upstream: same key, same target; retries move along the ring', async () => {
  await using(createUpstream('api', { targets: [{ url: A }, { url: B }], balancer: 'consistent-hash', hashOn: { header: 'x-user' } }), (up) => {
    const first = up.pick('alice');
    for (let i = 0; i < 10; i++) assert.equal(up.pick('alice'), first);
    const other = up.pick('alice', [first!]);
    assert.ok(other && other !== first);
  });
});

test('least-requests through begin/end accounting', async () => {
  await using(createUpstream('api', { targets: [{ url: A }, { url: B }], balancer: 'least-requests' }), (up) => {
    const [a, b] = up.targets;
    up.begin(a!); up.begin(a!);
    assert.equal(a!.inflight, 2);
    assert.equal(up.pick(undefined), b);
    up.begin(b!); up.begin(b!); up.begin(b!);
    assert.equal(up.pick(undefined), a);
    up.end(b!, ok200); up.end(b!, ok200); up.end(b!, { kind: 'cancelled' });
    assert.equal(b!.inflight, 0);
    assert.equal(up.pick(undefined), b);
  });
});

test('passive health is on by default: 5 failures eject for 30 s, probation, recovery', async () => {
  const clock = fakeClock();
  const log = eventLog();
  await using(createUpstream('api', { targets: [{ url: A }, { url: B }] }, { now: clock.now, onEvent: log.onEvent }), (up) => {
    const [a, b] = up.targets;
    const hit = (t: UpstreamTarget, o: Parameters<ManagedUpstream['end']>[1]) => { up.begin(t); up.end(t, o); };
    for (let i = 0; i < 4; i++) hit(a!, fail503);
    hit(a!, ok200); // resets the count
    for (let i = 0; i < 4; i++) hit(a!, { kind: 'error', error: 'connect' });
    hit(a!, { kind: 'response', status: 500 }); // not in failOnStatus: counts as success
    for (let i = 0; i < 4; i++) hit(a!, { kind: 'error', error: 'timeout' });
    hit(a!, { kind: 'cancelled' }); // says nothing about the target
    assert.equal(log.events.length, 0);
    hit(a!, fail503);
    assert.deepEqual(log.events, [{ type: 'target-ejected', upstream: 'api', target: A, failures: 5, cooldownMs: 30_000 }]);
    for (let i = 0; i < 10; i++) assert.equal(up.pick(undefined), b);
    assert.equal(up.snapshot().targets[0]!.ejected, true);

    clock.advance(30_000);
    const picks = new Set(Array.from({ length: 4 }, () => up.pick(undefined)));
    assert.ok(picks.has(a!), 'eligible again after the cool-down');
    hit(a!, fail503); // probation: one failure re-ejects
    assert.equal(log.events.length, 2);
    assert.equal(log.events[1]!.type, 'target-ejected');
    for (let i = 0; i < 10; i++) assert.equal(up.pick(undefined), b);

    clock.advance(30_000);
    hit(a!, ok200);
    assert.deepEqual(log.events[2], { type: 'target-recovered', upstream: 'api', target: A });
    assert.equal(up.snapshot().targets[0]!.ejected, false);
  });
});

test('passive config: custom threshold, cool-down and failOnStatus', async () => {
  const clock = fakeClock();
  const up = createUpstream('api', {
    targets: [{ url: A }],
    healthCheck: { passive: { consecutiveFailures: 2, cooldownMs: 100, failOnStatus: [500] } },
  }, { now: clock.now });
  await using(up, () => {
    for (let i = 0; i < 5; i++) attempt(up, fail503);
    assert.ok(up.pick(undefined), '503 not counted');
    attempt(up, { kind: 'response', status: 500 });
    attempt(up, { kind: 'response', status: 500 });
    assert.equal(up.pick(undefined), null, 'only target ejected: nothing to pick');
    clock.advance(100);
    assert.ok(up.pick(undefined));
  });
});

test('circuit breaker: closed → open → half-open → closed / re-open', async () => {
  const clock = fakeClock();
  const log = eventLog();
  const up = createUpstream('api', {
    targets: [{ url: A }, { url: B }],
    // passive ejection out of the way so only the breaker decides
    healthCheck: { passive: { consecutiveFailures: 1000 } },
    circuitBreaker: { minRequests: 4, failureRatio: 0.5, windowMs: 1_000, openMs: 5_000, halfOpenRequests: 1 },
  }, { now: clock.now, onEvent: log.onEvent });
  await using(up, () => {
    attempt(up, ok200);
    attempt(up, fail503);
    attempt(up, ok200);
    assert.equal(up.snapshot().breaker, 'closed');
    attempt(up, { kind: 'error', error: 'reset' }); // 2/4
    assert.equal(up.snapshot().breaker, 'open');
    assert.deepEqual(log.events, [{ type: 'breaker-opened', upstream: 'api', requests: 4, failures: 2, openMs: 5_000 }]);
    assert.equal(up.pick(undefined), null);

    clock.advance(5_000);
    const trial = up.pick(undefined);
    assert.ok(trial);
    assert.equal(log.events[1]!.type, 'breaker-half-open');
    up.begin(trial);
    assert.equal(up.pick(undefined), null, 'one trial at a time');
    up.end(trial, fail503);
    assert.equal(log.events[2]!.type, 'breaker-opened');
    assert.equal(up.pick(undefined), null);

    clock.advance(5_000);
    assert.ok(attempt(up, ok200));
    assert.deepEqual(log.events.slice(3).map((e) => e.type), ['breaker-half-open', 'breaker-closed']);
    assert.ok(up.pick(undefined));
  });
});

test('retry budget through the upstream', async () => {
  const clock = fakeClock();
  const up = createUpstream('api', { targets: [{ url: A }], retries: { budgetRatio: 0.5, minRetriesPerSecond: 0 } }, { now: clock.now });
  await using(up, () => {
    for (let i = 0; i < 4; i++) attempt(up, ok200);
    assert.equal(up.retry.tryAcquireRetry(), true);
    attempt(up, ok200); // the retry itself
    assert.equal(up.retry.tryAcquireRetry(), true);
    attempt(up, ok200);
    assert.equal(up.retry.tryAcquireRetry(), false, '2 retries for 4 requests at 0.5');
    clock.advance(10_000);
    assert.equal(up.retry.tryAcquireRetry(), false, 'the requests expired too');
  });
});

test('targets of another upstream and a throwing onEvent are harmless', async () => {
  const one = createUpstream('one', { targets: [{ url: A }] });
  const two = createUpstream('two', { targets: [{ url: A }], healthCheck: { passive: { consecutiveFailures: 1 } } }, {
    onEvent: () => { throw new Error('logger broke'); },
  });
  try {
    const foreign = one.pick(undefined)!;
    two.begin(foreign);
    two.end(foreign, fail503);
    assert.equal(foreign.inflight, 0);
    assert.ok(two.pick(undefined));
    attempt(two, fail503); // ejects and emits into the throwing logger
    assert.equal(two.pick(undefined), null);
  } finally {
    await Promise.all([one.close(), two.close()]);
  }
});

test('weight 0 targets are drained', async () => {
  await using(createUpstream('api', { targets: [{ url: A, weight: 0 }, { url: B }] }), (up) => {
    for (let i = 0; i < 5; i++) assert.equal(up.pick(undefined)?.origin, B);
  });
});

test('real requests through the target pool; close() waits for them, destroy() does not', async () => {
  let release!: () => void;
  const released = new Promise<void>((r) => { release = r; });
  let arrived!: () => void;
  const arrivedP = new Promise<void>((r) => { arrived = r; });
  const srv = await startServer((req, res) => {
    if (req.url === '/slow') { arrived(); void released.then(() => res.end('slow')); return; }
    res.end(`hello ${req.headers.host}`);
  });
  try {
    const up = createUpstream('api', { targets: [{ url: srv.url }] });
    const t = up.pick(undefined)!;
    const res = await t.dispatcher.request({ origin: t.origin, path: '/', method: 'GET', headers: { host: t.host } });
    assert.equal(await res.body.text(), `hello ${t.host}`);

    const slow = t.dispatcher.request({ origin: t.origin, path: '/slow', method: 'GET' });
    await arrivedP;
    let closed = false;
    const closing = up.close().then(() => { closed = true; });
    await new Promise((r) => setImmediate(r));
    assert.equal(closed, false, 'close() waits for the in-flight request');
    release();
    assert.equal(await (await slow).body.text(), 'slow');
    await closing;
    assert.equal(closed, true);

    const up2 = createUpstream('api2', { targets: [{ url: srv.url }] });
    const t2 = up2.pick(undefined)!;
    let hang!: () => void;
    const hung = new Promise<void>((r) => { hang = r; });
    srv.server.removeAllListeners('request');
    srv.server.on('request', () => hang());
    const pending = t2.dispatcher.request({ origin: t2.origin, path: '/', method: 'GET' });
    await hung;
    await up2.destroy();
    await assert.rejects(pending);
  } finally {
    await srv.close();
  }
});
