// Retries: which failures are retried (idempotent, bodiless requests; connect errors, resets, 502/503),
// that they go to another target, and that the retry budget can switch them off.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ManagedUpstream } from '../../src/upstream/types.js';
import { startGateway, config, get } from '../helpers/gateway.js';
import { startScripted, closedPort, echo, type ScriptHandler, type ScriptedUpstream } from '../helpers/servers.js';

/** /status/NNN answers NNN, anything else echoes. */
const byPath = (name: string): ScriptHandler => {
  const ok = echo(name);
  return (req, res, rec) => {
    const m = /^\/status\/(\d{3})/.exec(req.url ?? '');
    if (m === null) return ok(req, res, rec);
    res.writeHead(Number(m[1]), { 'content-type': 'text/plain' });
    res.end(`status ${m[1]} from ${name}`);
  };
};

const live = await startScripted('live');
const f1 = await startScripted('f1');
const f2 = await startScripted('f2');
f1.handler = byPath('f1');
f2.handler = byPath('f2');
const nb = await startScripted('nb');
nb.handler = byPath('nb');
const dead = await closedPort();
const keepIn = { passive: { consecutiveFailures: 1000 } };

const { gw, base } = await startGateway(config({
  upstreams: {
    mixed: { targets: [{ url: `http://127.0.0.1:${dead}` }, { url: live.url }], healthCheck: keepIn },
    failing: { targets: [{ url: f1.url }, { url: f2.url }], healthCheck: keepIn },
    nobudget: { targets: [{ url: nb.url }], healthCheck: keepIn, retries: { attempts: 3, budgetRatio: 0, minRetriesPerSecond: 0 } },
  },
  routes: [
    { id: 'mixed', match: { pathPrefix: '/mixed' }, upstream: 'mixed' },
    { id: 'failing', match: { pathPrefix: '/status' }, upstream: 'failing' },
    { id: 'nobudget', match: { pathPrefix: '/nb' }, upstream: 'nobudget', stripPrefix: '/nb' },
  ],
}));
after(async () => { await gw.close(0); await Promise.all([live.close(), f1.close(), f2.close(), nb.close()]); });

const hits = (...ups: ScriptedUpstream[]) => ups.reduce((n, u) => n + u.arrived, 0);

test('GET over a dead and a live target (round-robin): every request succeeds via retry', async () => {
  const before = live.arrived;
  for (let i = 0; i < 10; i++) {
    const r = await get(`${base}/mixed/${i}`);
    assert.equal(r.status, 200, `request ${i}: ${r.body}`);
    assert.equal(r.json().upstream, 'live');
  }
  assert.equal(live.arrived - before, 10, 'each request reached the live target exactly once');
  const snap = (gw.runtime.upstreams.get('mixed') as ManagedUpstream).snapshot();
  assert.ok(snap.targets[0]!.consecutiveFailures >= 4, 'the dead target was tried (and failed) along the way');
});

test('GET on upstream 503 and 502 is retried once, on the other target', async () => {
  for (const status of [503, 502]) {
    const b1 = f1.arrived;
    const b2 = f2.arrived;
    const r = await get(`${base}/status/${status}`);
    assert.equal(r.status, status);
    assert.equal(r.headers['content-type'], 'application/problem+json');
    assert.equal(f1.arrived - b1, 1, `${status}: one attempt on f1`);
    assert.equal(f2.arrived - b2, 1, `${status}: one attempt on f2`);
  }
});

test('GET on upstream 500 or 504 is not retried', async () => {
  for (const status of [500, 504]) {
    const before = hits(f1, f2);
    const r = await get(`${base}/status/${status}`);
    assert.equal(r.status, status);
    assert.equal(hits(f1, f2) - before, 1, `${status} is not retried`);
  }
});

test('POST with a body to a failing target is not retried', async () => {
  const before = hits(f1, f2);
  const r = await get(`${base}/status/503`, { method: 'POST', body: '{"charge":100}', headers: { 'content-type': 'application/json' } });
  assert.equal(r.status, 503);
  assert.equal(hits(f1, f2) - before, 1);
  const seen = [f1.seen.at(-1)!, f2.seen.at(-1)!].find((x) => x.method === 'POST');
  assert.ok(seen);
  assert.equal(seen.method, 'POST');
  assert.equal(seen.bodyLength, 14);
});

test('POST without a body and PATCH are not retried either; PUT with a body is not, DELETE is', async () => {
  for (const [method, body, expected] of [['POST', undefined, 1], ['PATCH', undefined, 1], ['PUT', 'x', 1], ['DELETE', undefined, 2]] as const) {
    const before = hits(f1, f2);
    const r = await get(`${base}/status/503`, { method, ...(body !== undefined ? { body } : {}) });
    assert.equal(r.status, 503);
    assert.equal(hits(f1, f2) - before, expected, `${method}${body ? ' with body' : ''}`);
  }
});

test('retry budget with budgetRatio 0 and minRetriesPerSecond 0: no retries at all', async () => {
  for (let i = 0; i < 3; i++) {
    const before = nb.arrived;
    const r = await get(`${base}/nb/status/503`);
    assert.equal(r.status, 503);
    assert.equal(nb.arrived - before, 1, 'attempts: 3 configured, but the budget allows none');
  }
});
