import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import type { IncomingMessage } from 'node:http';
import { createUpstream } from './upstream.js';
import { ActiveHealthChecker, compileActive } from './health-active.js';
import { eventLog, startServer, type TestServer } from './testing/helpers.js';

const FAST = { path: '/health', intervalMs: 20, timeoutMs: 500, healthyThreshold: 2, unhealthyThreshold: 2 };

async function withServers<T>(n: number, status: number[], fn: (servers: TestServer[]) => Promise<T>): Promise<T> {
  const servers: TestServer[] = [];
  for (let i = 0; i < n; i++) {
    servers.push(await startServer((req, res) => {
      res.statusCode = req.url === '/health' ? status[i]! : 404;
      res.end('x');
    }));
  }
  try { return await fn(servers); } finally { await Promise.all(servers.map((s) => s.close())); }
}

test('a target answering 500 becomes unhealthy and is not picked; it recovers on 200', async () => {
  const status = [200, 200];
  await withServers(2, status, async ([a, b]) => {
    const log = eventLog();
    const up = createUpstream('api', {
      targets: [{ url: a!.url }, { url: b!.url }],
      healthCheck: { active: FAST },
    }, { onEvent: log.onEvent });
    up.start();
    up.start(); // idempotent
    try {
      assert.equal(up.isReady(), true, 'targets start healthy');
      status[0] = 500;
      const e = await log.waitFor((x) => x.type === 'target-unhealthy');
      assert.deepEqual(e, { type: 'target-unhealthy', upstream: 'api', target: a!.url, reason: 'status 500' });
      assert.equal(up.targets[0]!.healthy, false);
      for (let i = 0; i < 20; i++) assert.equal(up.pick(undefined)?.origin, b!.url);
      assert.equal(up.isReady(), true);

      status[0] = 200;
      await log.waitFor((x) => x.type === 'target-healthy' && x.target === a!.url);
      const picked = new Set(Array.from({ length: 10 }, () => up.pick(undefined)?.origin));
      assert.deepEqual(picked, new Set([a!.url, b!.url]));
    } finally {
      await up.close();
    }
  });
});

test('all targets unhealthy: not ready and nothing to pick; ready again after recovery', async () => {
  const status = [503];
  await withServers(1, status, async ([a]) => {
    const log = eventLog();
    const up = createUpstream('api', { targets: [{ url: a!.url }], healthCheck: { active: FAST } }, { onEvent: log.onEvent });
    up.start();
    try {
      await log.waitFor((x) => x.type === 'target-unhealthy');
      assert.equal(up.isReady(), false);
      assert.equal(up.pick(undefined), null);
      status[0] = 200;
      await log.waitFor((x) => x.type === 'target-healthy');
      assert.equal(up.isReady(), true);
    } finally {
      await up.close();
    }
  });
});

test('probe timeout and refused connections count as failures', async () => {
  const hang = await startServer(() => { /* never answers */ });
  const gone = await startServer(() => {});
  const goneUrl = gone.url;
  await gone.close();
  const changes: { i: number; healthy: boolean; reason: string }[] = [];
  let resolve!: () => void;
  const both = new Promise<void>((r) => { resolve = r; });
  const checker = new ActiveHealthChecker(
    [{ origin: hang.url, host: 'h' }, { origin: goneUrl, host: 'g' }],
    compileActive({ ...FAST, timeoutMs: 50 }),
    (i, healthy, reason) => { changes.push({ i, healthy, reason }); if (changes.length === 2) resolve(); },
  );
  checker.start();
  try {
    await Promise.race([both, delay(5_000).then(() => { throw new Error(`timed out: ${JSON.stringify(changes)}`); })]);
    const byTarget = new Map(changes.map((c) => [c.i, c]));
    assert.deepEqual(byTarget.get(0), { i: 0, healthy: false, reason: 'timeout' });
    assert.deepEqual(byTarget.get(1), { i: 1, healthy: false, reason: 'ECONNREFUSED' });
  } finally {
    await checker.stop();
    await hang.close();
  }
});

test('probes use path, Host override and expectStatus; stop() ends them', async () => {
  let count = 0;
  const seen: IncomingMessage[] = [];
  const srv = await startServer((req, res) => {
    count++;
    seen.push(req);
    res.statusCode = 204;
    res.end();
  });
  const log = eventLog();
  const up = createUpstream('api', {
    targets: [{ url: srv.url }],
    healthCheck: { active: { path: '/healthz?deep=1', intervalMs: 10, timeoutMs: 1_000, expectStatus: [204], host: 'health.internal', healthyThreshold: 1, unhealthyThreshold: 1 } },
  }, { onEvent: log.onEvent });
  up.start();
  while (count < 3) await new Promise<void>((r) => srv.server.once('request', () => r()));
  await up.close();
  const after = count;
  await delay(60); // a few intervals: a leaked timer would probe again
  try {
    assert.equal(seen[0]!.url, '/healthz?deep=1');
    assert.equal(seen[0]!.headers.host, 'health.internal');
    assert.equal(seen[0]!.headers['user-agent'], 'portcullis-health-check');
    assert.deepEqual(log.events, [], '204 is the expected status: no transitions');
    assert.equal(count, after, 'no probe after close()');
  } finally {
    await srv.close();
  }
});

test('probes for one target never overlap: the next starts an interval after the previous ends', async () => {
  let open = 0;
  let maxOpen = 0;
  let started = 0;
  const release: (() => void)[] = [];
  let onStart: (() => void) | undefined;
  class Held extends ActiveHealthChecker {
    protected override probe(): Promise<string | null> {
      started++;
      maxOpen = Math.max(maxOpen, ++open);
      onStart?.();
      return new Promise((r) => release.push(() => { open--; r(null); }));
    }
  }
  const checker = new Held([{ origin: 'http://127.0.0.1:1', host: 'x' }], compileActive({ path: '/', intervalMs: 5 }), () => {});
  const nextStart = () => new Promise<void>((r) => { onStart = r; });
  let s = nextStart();
  checker.start();
  await s;
  await delay(50); // ten intervals with the first probe still running
  assert.equal(started, 1);
  s = nextStart();
  release.shift()!();
  await s;
  assert.equal(started, 2);
  assert.equal(maxOpen, 1);
  release.shift()!();
  await checker.stop();
});

test('compileActive defaults', () => {
  const s = compileActive({ path: '/' });
  assert.equal(s.intervalMs, 5_000);
  assert.equal(s.timeoutMs, 2_000);
  assert.equal(s.healthyThreshold, 2);
  assert.equal(s.unhealthyThreshold, 3);
  assert.equal(s.expectStatus, null);
  assert.equal(compileActive({ path: '/', intervalMs: 0 }).intervalMs, 5_000, '0 would busy-loop');
});
