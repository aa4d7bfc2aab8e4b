// Attestation `oneTimeUse: true`: a token is accepted once, through the shared state store. In process
// with the memory store, and across two gateways sharing Redis (used on one → refused on the other).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import type { GatewayConfig } from '../../src/config/schema.js';
import { SecurityEventBus, type SecurityEvent } from '../../src/observability/security-events.js';
import { startGateway, config, get } from '../helpers/gateway.js';
import { startUpstream } from '../helpers/upstream.js';
import { TEST_REDIS_URL, testKeyPrefix, deleteTestKeys } from '../helpers/redis.js';

const secretBytes = randomBytes(32);
const now = () => Math.floor(Date.now() / 1000);
const token = (did = 'device-1'): Promise<string> =>
  new SignJWT({ did, n: randomBytes(8).toString('hex') }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime(now() + 60).sign(secretBytes);

const up = await startUpstream('app');
const prefix = testKeyPrefix('attestation-once');
const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers) await c();
  await up.close();
  await deleteTestKeys(prefix);
});

function gatewayConfig(extra: Partial<GatewayConfig> = {}): GatewayConfig {
  return config({
    identity: { attestation: { approov: { secret: secretBytes.toString('base64'), algorithms: ['HS256'], maxLifetimeSec: 300, leewaySec: 5 } } },
    upstreams: { app: { targets: [{ url: up.url }] } },
    routes: [
      { id: 'once', match: { pathPrefix: '/once' }, upstream: 'app', attestation: { verifier: 'approov', oneTimeUse: true } },
      { id: 'reusable', match: { pathPrefix: '/reusable' }, upstream: 'app', attestation: { verifier: 'approov' } },
    ],
    ...extra,
  });
}

async function start(extra: Partial<GatewayConfig> = {}) {
  const events = new SecurityEventBus();
  const seen: SecurityEvent[] = [];
  events.subscribe((e) => seen.push(e));
  const g = await startGateway(gatewayConfig(extra), { events });
  closers.push(() => g.gw.close(0));
  return { base: g.base, seen };
}

test('memory store: a token is accepted once; the replay is refused (attestation-replay); other tokens pass', async () => {
  const { base, seen } = await start();
  const t = await token();
  assert.equal((await get(`${base}/once/a`, { headers: { 'attestation-token': t } })).status, 200);
  const replay = await get(`${base}/once/b`, { headers: { 'attestation-token': t } });
  assert.equal(replay.status, 401);
  assert.equal(replay.json<{ type: string }>().type, 'https://portcullis.dev/problems/attestation-invalid');
  assert.deepEqual(seen.map((e) => [e.type, e.reason, e.route]), [['attestation', 'attestation-replay', 'once']]);
  // a fresh token from the same device is fine, once
  const t2 = await token();
  assert.equal((await get(`${base}/once/c`, { headers: { 'attestation-token': t2 } })).status, 200);
  assert.equal((await get(`${base}/once/c`, { headers: { 'attestation-token': t2 } })).status, 401);
  // a route without oneTimeUse keeps accepting a valid token until it expires
  const t3 = await token();
  for (let i = 0; i < 3; i++) assert.equal((await get(`${base}/reusable/x`, { headers: { 'attestation-token': t3 } })).status, 200);
  // an invalid token takes no slot and is refused for what it is
  const before = seen.length;
  assert.equal((await get(`${base}/once/x`, { headers: { 'attestation-token': t3.slice(0, -2) + 'xx' } })).status, 401);
  assert.equal(seen.at(before)?.reason, 'attestation-bad-signature');
});

test('redis: two gateways sharing the store: a token used on one is refused on the other', async () => {
  const state = { type: 'redis' as const, url: TEST_REDIS_URL, keyPrefix: prefix };
  const a = await start({ state });
  const b = await start({ state });
  const t = await token();
  assert.equal((await get(`${a.base}/once/x`, { headers: { 'attestation-token': t } })).status, 200);
  assert.equal((await get(`${b.base}/once/x`, { headers: { 'attestation-token': t } })).status, 401);
  assert.equal(b.seen.at(-1)?.reason, 'attestation-replay');
  assert.equal((await get(`${a.base}/once/x`, { headers: { 'attestation-token': t } })).status, 401);
  // concurrently on both: exactly one wins
  const t2 = await token();
  const statuses = await Promise.all([a.base, b.base, a.base, b.base].map(async (base) => (await get(`${base}/once/y`, { headers: { 'attestation-token': t2 } })).status));
  assert.deepEqual(statuses.sort(), [200, 401, 401, 401]);
});

test('redis unreachable: fails closed with 503 (attestation-replay-check-unavailable)', async () => {
  const g = await start({ state: { type: 'redis', url: 'redis://127.0.0.1:1', keyPrefix: prefix } });
  const r = await get(`${g.base}/once/x`, { headers: { 'attestation-token': await token() } });
  assert.equal(r.status, 503);
  assert.equal(g.seen.at(-1)?.reason, 'attestation-replay-check-unavailable');
  // the route without oneTimeUse does not need the store
  assert.equal((await get(`${g.base}/reusable/x`, { headers: { 'attestation-token': await token() } })).status, 200);
});
