// The rate-limit stage in a real in-process gateway (memory store, synchronous path): 429 problem body
// and headers, RateLimit headers on success, keys by IP / consumer / API key / claim, spoofed X-Forwarded-For,
// stacked limits, consumer plans, throttling (delay, then 429).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startGateway, config, get } from '../helpers/gateway.js';
import { startUpstream } from '../helpers/upstream.js';
import { newSigningKey, signWith } from '../helpers/oidc.js';
import { SecurityEventBus, type SecurityEvent } from '../../src/observability/security-events.js';
import { rateLimitIssues } from '../../src/stages/rate-limit/semantic.js';
import type { GatewayConfig } from '../../src/config/schema.js';
import { generateApiKey, hashApiKey } from '../../src/identity/api-keys/format.js';
import { PEPPER } from '../helpers/keys.js';

const ISS = 'https://idp.rl.test';
const key = await newSigningKey('ES256', 'rl-1');
const up = await startUpstream('rl');
const events = new SecurityEventBus();
const seen: SecurityEvent[] = [];
events.subscribe((e) => seen.push(e));
const jwtAuth = { methods: [{ jwt: { issuers: ['idp'] } }] };
// two API keys of one consumer: keyed by apiKey they are two clients, not one
const daveKeys = [generateApiKey(), generateApiKey()] as const;
const cfg = config({
  identity: {
    issuers: { idp: { issuer: ISS, keys: [{ jwk: key.publicJwk }], algorithms: ['ES256'], audiences: ['rl-api'], consumerClaim: 'sub' } },
    pepper: PEPPER,
    consumers: [{ id: 'alice', metadata: { plan: 'gold' } }, { id: 'bob' }, { id: 'carol', metadata: { plan: 'gold' } },
      { id: 'dave', apiKeys: daveKeys.map((k, i) => ({ id: `kd${i + 1}`, hash: hashApiKey(PEPPER, k) })) }],
  },
  rateLimiting: {
    plans: { gold: { limits: [{ name: 'gold', limit: 4, windowMs: 60_000 }] }, free: { limits: [{ name: 'free', limit: 1, windowMs: 60_000 }] } },
    defaultPlan: 'free',
  },
  upstreams: { up: { targets: [{ url: up.url }] } },
  routes: [
    { id: 'ip', match: { pathPrefix: '/ip' }, upstream: 'up', rateLimit: { limits: [{ limit: 3, windowMs: 60_000 }] } },
    { id: 'tenant', match: { pathPrefix: '/tenant' }, upstream: 'up', rateLimit: { limits: [{ limit: 1, windowMs: 60_000, by: [{ header: 'X-Tenant' }, 'ip'] }] } },
    { id: 'quiet', match: { pathPrefix: '/quiet' }, upstream: 'up', rateLimit: { headers: false, limits: [{ limit: 1, windowMs: 60_000 }] } },
    { id: 'consumer', match: { pathPrefix: '/consumer' }, upstream: 'up', authentication: jwtAuth, rateLimit: { limits: [{ limit: 2, windowMs: 60_000, by: ['consumer'] }] } },
    { id: 'apikey', match: { pathPrefix: '/apikey' }, upstream: 'up', authentication: { methods: [{ apiKey: {} }] }, rateLimit: { limits: [{ limit: 2, windowMs: 60_000, by: ['apiKey'] }] } },
    { id: 'claim', match: { pathPrefix: '/claim' }, upstream: 'up', authentication: jwtAuth, rateLimit: { limits: [{ limit: 2, windowMs: 60_000, by: [{ claim: 'org.id' }] }] } },
    { id: 'stacked', match: { pathPrefix: '/stacked' }, upstream: 'up', rateLimit: { limits: [{ name: 'burst', algorithm: 'token-bucket', limit: 1, windowMs: 60_000, burst: 3 }, { name: 'global', limit: 5, windowMs: 60_000, by: ['route'] }] } },
    { id: 'plans', match: { pathPrefix: '/plans' }, upstream: 'up', authentication: { ...jwtAuth, anonymous: true }, rateLimit: { plans: true } },
    { id: 'throttle', match: { pathPrefix: '/throttle' }, upstream: 'up', rateLimit: { limits: [{ algorithm: 'token-bucket', limit: 1, windowMs: 1_000, burst: 1, mode: 'delay', maxDelayMs: 2_500, maxQueue: 10 }] } },
  ],
} as Partial<GatewayConfig> as GatewayConfig);
const { gw, base } = await startGateway(cfg, { events });
after(async () => { await gw.close(0); await up.close(); });

/** A request from another loopback source address (another client IP). */
function statusFrom(localAddress: string, url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get(url, { localAddress, agent: false }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode ?? 0)); }).on('error', reject);
  });
}

const token = (sub: string, extra: Record<string, unknown> = {}): Promise<string> =>
  signWith(key, { iss: ISS, aud: 'rl-api', sub, iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 300, ...extra });
const bearer = async (sub: string, extra?: Record<string, unknown>): Promise<Record<string, string>> => ({ authorization: `Bearer ${await token(sub, extra)}` });

test('the configuration passes its semantic checks', () => {
  assert.deepEqual(rateLimitIssues(cfg).filter((i) => i.severity === 'error'), []);
});

test('limit by IP: RateLimit headers on success, then a 429 problem with retry_after and Retry-After', async () => {
  for (let i = 0; i < 3; i++) {
    const r = await get(`${base}/ip`);
    assert.equal(r.status, 200);
    assert.equal(r.headers['ratelimit-policy'], '"default";q=3;w=60');
    assert.match(String(r.headers.ratelimit), new RegExp(`^"default";r=${2 - i};t=\\d+$`));
  }
  const before = seen.length;
  const r = await get(`${base}/ip`);
  assert.equal(r.status, 429);
  assert.equal(r.headers['content-type'], 'application/problem+json');
  const body = r.json<{ type: string; status: number; retry_after: number; request_id: string }>();
  assert.equal(body.type, 'https://portcullis.dev/problems/rate-limited');
  assert.equal(body.status, 429);
  assert.ok(Number.isInteger(body.retry_after) && body.retry_after >= 1 && body.retry_after <= 60);
  assert.equal(r.headers['retry-after'], String(body.retry_after));
  assert.equal(r.headers['ratelimit-policy'], '"default";q=3;w=60');
  assert.match(String(r.headers.ratelimit), /^"default";r=0;t=\d+$/);
  assert.equal(seen.length, before + 1);
  assert.deepEqual([seen.at(-1)!.type, seen.at(-1)!.reason, seen.at(-1)!.route], ['rate-limit', 'limit-exceeded', 'ip']);
});

test('a spoofed X-Forwarded-For from an untrusted peer does not get a fresh bucket', async () => {
  // /ip is exhausted for 127.0.0.1 by the previous test
  for (const xff of ['203.0.113.9', '198.51.100.7, 10.0.0.1', '::1']) {
    const r = await get(`${base}/ip`, { headers: { 'x-forwarded-for': xff, forwarded: `for=${xff.split(',')[0]}`, 'x-real-ip': '192.0.2.1' } });
    assert.equal(r.status, 429);
  }
});

test('limit by header (with ip): tenants have separate buckets; long values are hashed whole, a missing header falls back to the IP', async () => {
  const t = (v?: string) => get(`${base}/tenant`, v === undefined ? {} : { headers: { 'x-tenant': v } });
  assert.equal((await t('acme')).status, 200);
  assert.equal((await t('acme')).status, 429);
  assert.equal((await t('globex')).status, 200, 'another tenant, another bucket');
  // two 300-character values that differ only at the end: two buckets (hashed, not truncated)
  const long = 'x'.repeat(299);
  assert.equal((await t(`${long}1`)).status, 200);
  assert.equal((await t(`${long}2`)).status, 200);
  assert.equal((await t(`${long}1`)).status, 429);
  // a value made to look like another key's parts is escaped: no collision with tenant "acme"
  assert.equal((await t('acme|i:127.0.0.1')).status, 200);
  assert.equal((await t()).status, 200);
  assert.equal((await t()).status, 429, 'no header: the client IP is the key');
});

test('headers: false leaves successful responses without RateLimit headers (a 429 still has them)', async () => {
  const ok = await get(`${base}/quiet`);
  assert.equal(ok.status, 200);
  assert.equal(ok.headers.ratelimit, undefined);
  assert.equal(ok.headers['ratelimit-policy'], undefined);
  const no = await get(`${base}/quiet`);
  assert.equal(no.status, 429);
  assert.ok(no.headers.ratelimit !== undefined);
});

test('limit by consumer: each consumer has its own bucket', async () => {
  const alice = await bearer('alice');
  const bob = await bearer('bob');
  assert.deepEqual([(await get(`${base}/consumer`, { headers: alice })).status, (await get(`${base}/consumer`, { headers: alice })).status, (await get(`${base}/consumer`, { headers: alice })).status], [200, 200, 429]);
  assert.equal((await get(`${base}/consumer`, { headers: bob })).status, 200);
  assert.equal(seen.at(-1)!.consumer, 'alice');
});

test('limit by apiKey: each key has its own bucket (two keys of one consumer too); the same key shares one', async () => {
  const k1 = { 'x-api-key': daveKeys[0] };
  const k2 = { 'x-api-key': daveKeys[1] };
  const statuses = async (h: Record<string, string>, n: number) => { const out: number[] = []; for (let i = 0; i < n; i++) out.push((await get(`${base}/apikey`, { headers: h })).status); return out; };
  assert.deepEqual(await statuses(k1, 3), [200, 200, 429]);
  assert.deepEqual([seen.at(-1)!.type, seen.at(-1)!.route], ['rate-limit', 'apikey']);
  // the other key of the same consumer: a fresh bucket, used up on its own
  assert.deepEqual(await statuses(k2, 3), [200, 200, 429]);
  // and the first key's bucket is still empty
  assert.deepEqual(await statuses(k1, 1), [429]);
  // an unknown key is refused by authentication, before any bucket
  assert.equal((await get(`${base}/apikey`, { headers: { 'x-api-key': generateApiKey() } })).status, 401);
});

test('limit by claim: identities with the same claim value share a bucket', async () => {
  const a = await bearer('alice', { org: { id: 'acme' } });
  const c = await bearer('carol', { org: { id: 'acme' } });
  const b = await bearer('bob', { org: { id: 'globex' } });
  assert.equal((await get(`${base}/claim`, { headers: a })).status, 200);
  assert.equal((await get(`${base}/claim`, { headers: c })).status, 200);
  assert.equal((await get(`${base}/claim`, { headers: a })).status, 429);
  assert.equal((await get(`${base}/claim`, { headers: b })).status, 200);
});

test('stacked limits: per-client token bucket and a global per-route limit; both reported', async () => {
  const statuses: number[] = [];
  for (let i = 0; i < 4; i++) statuses.push((await get(`${base}/stacked`)).status);
  assert.deepEqual(statuses, [200, 200, 200, 429]);
  // another client (source address 127.0.0.2) has its own bucket but shares the route's global 5
  const other: number[] = [];
  for (let i = 0; i < 3; i++) other.push(await statusFrom('127.0.0.2', `${base}/stacked`));
  assert.deepEqual(other, [200, 200, 429]);
  const r = await get(`${base}/stacked`);
  assert.equal(r.headers['ratelimit-policy'], '"burst";q=3;w=180, "global";q=5;w=60');
  assert.match(String(r.headers.ratelimit), /^"burst";r=0;t=\d+, "global";r=0;t=\d+$/);
});

test('plans: limits follow the consumer metadata plan; unknown or anonymous get the default plan', async () => {
  const alice = await bearer('alice'); // gold: 4
  const bob = await bearer('bob'); // no plan → free: 1
  const a: number[] = [];
  for (let i = 0; i < 5; i++) a.push((await get(`${base}/plans`, { headers: alice })).status);
  assert.deepEqual(a, [200, 200, 200, 200, 429]);
  assert.deepEqual([(await get(`${base}/plans`, { headers: bob })).status, (await get(`${base}/plans`, { headers: bob })).status], [200, 429]);
  const anon = await get(`${base}/plans`);
  assert.equal(anon.status, 200);
  assert.equal(anon.headers['ratelimit-policy'], '"free";q=1;w=60');
  assert.equal((await get(`${base}/plans`)).status, 429);
});

test('throttling: over-rate requests wait for their slot up to maxDelayMs, then 429', async () => {
  const t0 = performance.now();
  const rs = await Promise.all(Array.from({ length: 5 }, async () => {
    const r = await get(`${base}/throttle`);
    return { status: r.status, ms: performance.now() - t0 };
  }));
  const ok = rs.filter((r) => r.status === 200);
  // Slots a second apart (0, 1 s, 2 s; 3 s is beyond maxDelayMs): wide enough that requests arriving a few
  // hundred ms apart on a busy machine still fall into the same schedule.
  assert.equal(ok.length, 3);
  assert.equal(rs.filter((r) => r.status === 429).length, 2);
  assert.ok(Math.max(...ok.map((r) => r.ms)) >= 1_950, 'the last admitted one waited for its slot');
  assert.equal(seen.at(-1)!.reason, 'throttle-exceeded');
});
