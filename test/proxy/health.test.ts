// Health through the gateway: passive ejection and its cool-down, active probes taking a target out
// and back in, and the answer when no target is left.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, config, get } from '../helpers/gateway.js';
import { startScripted, statusHandler, echo, captureLogger, closedPort, type ScriptHandler } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

const COOLDOWN = 300;
const good = await startScripted('good');
const bad = await startScripted('bad', statusHandler(502, 'bad'));

/** /health answers `probe.status`; other paths echo. */
const probed = (name: string, probe: { status: number }): ScriptHandler => {
  const ok = echo(name);
  return (req, res, rec) => {
    if (req.url === '/health') { res.writeHead(probe.status); res.end(); return; }
    ok(req, res, rec);
  };
};
const aProbe = { status: 200 };
const bProbe = { status: 500 };
const cProbe = { status: 500 };
const a = await startScripted('a', probed('a', aProbe));
const b = await startScripted('b', probed('b', bProbe));
const c = await startScripted('c', probed('c', cProbe));
const dead = await closedPort();

const active = { path: '/health', intervalMs: 50, timeoutMs: 1000, healthyThreshold: 1, unhealthyThreshold: 1 };
const log = captureLogger();
const { gw, base } = await startGateway(config({
  upstreams: {
    passive: {
      targets: [{ url: good.url }, { url: bad.url }],
      retries: { attempts: 0 },
      healthCheck: { passive: { consecutiveFailures: 2, cooldownMs: COOLDOWN } },
    },
    active: { targets: [{ url: a.url }, { url: b.url }], healthCheck: { active } },
    alldown: { targets: [{ url: c.url }], healthCheck: { active } },
    deadonly: { targets: [{ url: `http://127.0.0.1:${dead}` }], healthCheck: { passive: { consecutiveFailures: 2, cooldownMs: 60_000 } } },
  },
  routes: [
    { id: 'passive', match: { pathPrefix: '/passive' }, upstream: 'passive' },
    { id: 'active', match: { pathPrefix: '/active' }, upstream: 'active' },
    { id: 'alldown', match: { pathPrefix: '/alldown' }, upstream: 'alldown' },
    { id: 'deadonly', match: { pathPrefix: '/deadonly' }, upstream: 'deadonly' },
  ],
}), { logger: log.logger });
after(async () => { await gw.close(0); await Promise.all([good.close(), bad.close(), a.close(), b.close(), c.close()]); });

const events = (type: string, target: string) => log.events(type).filter((e) => (e.event as { target?: string }).target === target);

test('passive: consecutive failures eject a target; after the cool-down it is tried again', async () => {
  // Round-robin alternates, so a few requests give the bad target its two failures.
  await waitFor(async () => { await get(`${base}/passive/x`); return bad.arrived >= 2; }, { what: 'two failures on the bad target', intervalMs: 0 });
  const ejectedAt = performance.now();
  assert.equal(bad.arrived, 2);
  assert.equal(events('target-ejected', bad.url).length, 1);

  const goodBefore = good.arrived;
  for (let i = 0; i < 6; i++) assert.equal((await get(`${base}/passive/x`)).status, 200);
  assert.equal(bad.arrived, 2, 'an ejected target gets no traffic');
  assert.equal(good.arrived - goodBefore, 6);

  // After the cool-down the target is eligible again (on probation): one failure re-ejects it.
  await waitFor(async () => { await get(`${base}/passive/x`); return bad.arrived === 3; }, { what: 'a retry of the bad target after the cool-down', timeoutMs: 5000 });
  assert.ok(performance.now() - ejectedAt >= COOLDOWN - 20, 'not before the cool-down');
  assert.equal(events('target-ejected', bad.url).length, 2, 'probation failure re-ejects at once');
  for (let i = 0; i < 4; i++) assert.equal((await get(`${base}/passive/x`)).status, 200);
  assert.equal(bad.arrived, 3);

  // Recovery: once it answers well, the first success after the cool-down brings it back for good.
  bad.handler = echo('bad');
  await waitFor(async () => { await get(`${base}/passive/x`); return bad.arrived === 4; }, { what: 'the recovered target to be tried', timeoutMs: 5000 });
  assert.equal(events('target-recovered', bad.url).length, 1);
  const before = bad.arrived;
  for (let i = 0; i < 6; i++) await get(`${base}/passive/x`);
  assert.equal(bad.arrived - before, 3, 'back in the round-robin');
});

test('passive: a single dead target is ejected, then requests get 503 without a connection attempt', async () => {
  const r1 = await get(`${base}/deadonly/x`);
  assert.equal(r1.status, 502);
  await waitFor(() => events('target-ejected', `http://127.0.0.1:${dead}`).length === 1 || undefined, { what: 'ejection' });
  const r = await get(`${base}/deadonly/x`);
  assert.equal(r.status, 503);
  assert.equal(r.headers['retry-after'], '1');
  assert.equal(r.json().type, 'https://portcullis.dev/problems/upstream-unavailable');
});

test('active: a target failing its probe gets no traffic, and is back once the probe passes', async () => {
  await waitFor(() => events('target-unhealthy', b.url).length > 0, { what: 'b marked unhealthy' });
  const bBefore = b.traffic().length;
  for (let i = 0; i < 10; i++) {
    const r = await get(`${base}/active/x`);
    assert.equal(r.status, 200);
    assert.equal(r.json().upstream, 'a');
  }
  assert.equal(b.traffic().length, bBefore, 'no proxied request reached b');
  assert.ok(b.seen.some((r) => r.url === '/health'), 'b is still probed');

  bProbe.status = 200;
  await waitFor(() => events('target-healthy', b.url).length > 0, { what: 'b healthy again' });
  const seen = new Set<unknown>();
  for (let i = 0; i < 6; i++) seen.add((await get(`${base}/active/x`)).json().upstream);
  assert.deepEqual([...seen].sort(), ['a', 'b']);
  assert.ok(events('target-unhealthy', a.url).length === 0, 'the healthy target was never marked down');
});

test('all targets down -> 503 problem+json with Retry-After; nothing is forwarded', async () => {
  await waitFor(() => events('target-unhealthy', c.url).length > 0, { what: 'c marked unhealthy' });
  const r = await get(`${base}/alldown/x`);
  assert.equal(r.status, 503);
  assert.equal(r.headers['retry-after'], '1');
  assert.equal(r.headers['content-type'], 'application/problem+json');
  assert.equal(c.traffic().length, 0);

  cProbe.status = 200;
  await waitFor(() => events('target-healthy', c.url).length > 0, { what: 'c healthy again' });
  assert.equal((await get(`${base}/alldown/x`)).status, 200);
});
