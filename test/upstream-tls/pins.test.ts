// SPKI pinning of the upstream's leaf key: with and without chain verification, the security event,
// passive-health ejection of a target with the wrong key, and retry onto a target with the right one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makePki, spkiPin } from '../helpers/certs.js';
import { get } from '../helpers/gateway.js';
import { tlsHarness } from './helpers.js';

const pki = makePki();
const { upstream, gateway } = tlsHarness();

const serverPin = spkiPin(pki.server.certPem);
const otherPin = spkiPin(pki.serverRsa.certPem); // same names, same CA, another key

test('a matching pin (among several) connects', async () => {
  const up = await upstream(pki.server);
  const { base } = await gateway({ targets: [{ url: up.url }], tls: { ca: pki.ca.cert, pins: [otherPin, serverPin] } });
  const r = await get(`${base}/x`);
  assert.equal(r.status, 200);
  assert.equal(up.requests.length, 1);
});

test('a valid certificate whose key is not pinned is refused: 502, security event, nothing reaches the upstream', async () => {
  const up = await upstream(pki.serverRsa); // verifies against the CA, but another key
  const { base, log, events } = await gateway({ targets: [{ url: up.url }], tls: { ca: pki.ca.cert, pins: [serverPin] } });
  const r = await get(`${base}/x`);
  assert.equal(r.status, 502);
  const p = r.json<{ type: string; detail: string }>();
  assert.match(p.type, /upstream-tls-error$/);
  assert.ok(!r.body.includes(otherPin) && !r.body.includes(serverPin) && !r.body.includes('pin'), r.body);
  assert.equal(up.requests.length, 0);

  const ev = log.events('tls-pin-mismatch');
  assert.equal(ev.length, 1, 'one security event per failed handshake');
  assert.equal(ev[0]!.level, 40);
  assert.equal(ev[0]!.upstream, 'api');
  assert.equal(ev[0]!.target, up.url);
  assert.equal((ev[0]!.event as { observed: string }).observed, otherPin);
  // and on the security event bus (metric portcullis_security_events_total{type="upstream-tls"})
  assert.deepEqual(events.map((e) => ({ type: e.type, reason: e.reason, upstream: e.upstream, route: e.route })), [{ type: 'upstream-tls', reason: 'tls-pin-mismatch', upstream: 'api', route: '' }]);
});

test('pins are enforced when chain verification is off (insecureSkipVerify)', async () => {
  const upOk = await upstream(pki.serverOtherCa);
  const ok = await gateway({ targets: [{ url: upOk.url }], tls: { insecureSkipVerify: true, pins: [spkiPin(pki.serverOtherCa.certPem)] } });
  assert.equal((await get(`${ok.base}/x`)).status, 200);

  const upBad = await upstream(pki.serverOtherCa);
  const bad = await gateway({ targets: [{ url: upBad.url }], tls: { insecureSkipVerify: true, pins: [serverPin] }, healthCheck: { passive: { consecutiveFailures: 100 } } });
  // Every connection is checked: no session resumption can skip it.
  for (let i = 0; i < 3; i++) {
    const r = await get(`${bad.base}/x`);
    assert.equal(r.status, 502);
    assert.match(r.body, /upstream-tls-error/);
  }
  assert.equal(upBad.requests.length, 0);
  assert.equal(bad.log.events('tls-pin-mismatch').length, 3);
});

test('a pin mismatch counts against the target: it is ejected, and a retry goes to a target with the pinned key', async () => {
  const good = await upstream(pki.server);
  const bad = await upstream(pki.serverRsa);
  const { base, log } = await gateway({
    targets: [{ url: bad.url }, { url: good.url }],
    tls: { ca: pki.ca.cert, pins: [serverPin] },
    retries: { attempts: 1, minRetriesPerSecond: 100 },
    healthCheck: { passive: { consecutiveFailures: 2, cooldownMs: 60_000 } },
  });
  for (let i = 0; i < 6; i++) {
    const r = await get(`${base}/x${i}`);
    assert.equal(r.status, 200, `request ${i}: ${r.body}`);
  }
  assert.equal(good.requests.length, 6);
  assert.equal(bad.requests.length, 0);
  const ejected = log.events('target-ejected');
  assert.equal(ejected.length, 1);
  assert.equal((ejected[0]!.event as { target: string }).target, bad.url);
  assert.equal(log.events('tls-pin-mismatch').length, 2, 'no handshakes with an ejected target');
});
