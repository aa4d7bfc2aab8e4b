// Circuit breaker through the gateway: failures open it, open means a fast 503 that never reaches the
// upstream, and after openMs one probe goes through and decides.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, config, get } from '../helpers/gateway.js';
import { startScripted, statusHandler, echo, captureLogger } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

const OPEN_MS = 300;
const up = await startScripted('cb', statusHandler(502, 'cb'));
const log = captureLogger();
const { gw, base } = await startGateway(config({
  upstreams: {
    cb: {
      targets: [{ url: up.url }],
      retries: { attempts: 0 },
      // keep passive ejection out of the picture
      healthCheck: { passive: { consecutiveFailures: 1000 } },
      circuitBreaker: { failureRatio: 0.5, minRequests: 4, windowMs: 10_000, openMs: OPEN_MS, halfOpenRequests: 1 },
    },
  },
  routes: [{ id: 'cb', match: { pathPrefix: '/' }, upstream: 'cb' }],
}), { logger: log.logger });
after(async () => { await gw.close(0); await up.close(); });

test('failures open the breaker: fast 503 without touching the upstream; after openMs a probe closes it', async () => {
  for (let i = 0; i < 4; i++) assert.equal((await get(`${base}/x`)).status, 502);
  assert.equal(up.arrived, 4);
  assert.equal(log.events('breaker-opened').length, 1);
  const openedAt = performance.now();

  for (let i = 0; i < 5; i++) {
    const r = await get(`${base}/x`);
    assert.equal(r.status, 503);
    assert.equal(r.headers['retry-after'], '1');
    assert.equal(r.json().type, 'https://portcullis.dev/problems/upstream-unavailable');
  }
  assert.equal(up.arrived, 4, 'an open breaker sends nothing upstream');

  // Still failing when half-open: the single probe fails and the breaker re-opens.
  await waitFor(async () => (await get(`${base}/x`)).status === 502, { what: 'the half-open probe', intervalMs: 25 });
  assert.ok(performance.now() - openedAt >= OPEN_MS - 20, 'no probe before openMs');
  assert.equal(up.arrived, 5, 'exactly one probe went through');
  assert.equal(log.events('breaker-opened').length, 2);
  assert.equal((await get(`${base}/x`)).status, 503);
  assert.equal(up.arrived, 5);

  // Upstream healthy again: the next probe succeeds and closes the breaker.
  up.handler = echo('cb');
  await waitFor(async () => (await get(`${base}/x`)).status === 200, { what: 'the second probe', intervalMs: 25 });
  assert.equal(up.arrived, 6);
  assert.equal(log.events('breaker-closed').length, 1);
  for (let i = 0; i < 5; i++) assert.equal((await get(`${base}/x`)).status, 200);
  assert.equal(up.arrived, 11);
});
