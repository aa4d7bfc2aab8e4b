// The Redis cache store through two gateways sharing one Redis (127.0.0.1:6379, unique key prefix):
// a response stored by one is a hit on the other, Vary variants, per-identity keys, purge by prefix and
// key (SCAN + UNLINK), and a Redis that cannot be reached (every request a miss, never an error or a hang).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Gateway } from '../../src/gateway/gateway.js';
import type { GatewayConfig } from '../../src/config/schema.js';
import { config, get as rawGet, startGateway } from '../helpers/gateway.js';
import { consumersWithKeys } from '../helpers/keys.js';
import { within } from '../helpers/wait.js';
import { startCacheUpstream, type CacheUpstream, type CacheBody } from './upstream.js';
import { cacheStoresOf } from '../../src/services/cache-purge.js';
import { RedisCacheStore, MAX_VARIANTS_PER_KEY } from '../../src/stages/cache/redis-store.js';
import { CachedResponse } from '../../src/stages/cache/entry.js';

const REDIS = 'redis://127.0.0.1:6379';
const prefix = `pcl-test:${randomUUID()}:`;
const { keys: [keyA, keyB], identity } = consumersWithKeys('alice', 'bob');
let up: CacheUpstream;
let gw1: Gateway, gw2: Gateway;
let base1: string, base2: string;
let redis: Redis;

function cfg(url: string, keyPrefix: string): GatewayConfig {
  return config({
    upstreams: { u: { targets: [{ url: up.url }] } },
    state: { type: 'redis', url: REDIS, keyPrefix: `${keyPrefix}state:` },
    caching: { store: 'redis', redis: { url, keyPrefix } },
    identity,
    routes: [
      { id: 'pub', match: { pathPrefix: '/pub' }, upstream: 'u', cache: { public: true } },
      { id: 'me', match: { pathPrefix: '/me' }, upstream: 'u', cache: {}, authentication: { methods: [{ apiKey: {} }], forward: { consumer: 'X-Consumer' } } },
    ],
  });
}

before(async () => {
  up = await startCacheUpstream();
  redis = new Redis(REDIS);
  ({ gw: gw1, base: base1 } = await startGateway(cfg(REDIS, prefix)));
  ({ gw: gw2, base: base2 } = await startGateway(cfg(REDIS, prefix)));
});

after(async () => {
  await gw1.close(0);
  await gw2.close(0);
  await up.close();
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
});

const CC = 'cc=max-age%3D60';
const HOST = 'api.test';
// Both gateways must see the same Host (it is part of the key), as behind one DNS name.
const get = (url: string, opts: { headers?: Record<string, string> } = {}) => rawGet(url, { headers: { host: HOST, ...opts.headers } });
const status = (r: { headers: Record<string, unknown> }) => String(r.headers['cache-status']);

test('a response stored by one gateway is a hit on the other', async () => {
  const a = await get(`${base1}/pub/shared?${CC}`);
  assert.equal(status(a), 'portcullis; fwd=uri-miss; stored');
  // The store is fire-and-forget after the response: wait until Redis has it.
  await within((async () => { while ((await redis.keys(`${prefix}*shared*`)).length === 0) await new Promise((r) => setImmediate(r)); })(), 2000, 'store');
  const b = await get(`${base2}/pub/shared?${CC}`);
  assert.match(status(b), /^portcullis; hit; ttl=/);
  assert.equal(b.body, a.body);
  assert.equal(up.count('/pub/shared'), 1);
  const ttl = await redis.pttl((await redis.keys(`${prefix}*shared*`))[0]!);
  assert.ok(ttl > 50_000 && ttl <= 60_000, `hash expires with the entry (${ttl} ms)`);
});

test('Vary variants and per-identity keys in Redis', async () => {
  const p = `/pub/vary?${CC}&vary=Accept-Language`;
  await get(`${base1}${p}`, { headers: { 'accept-language': 'en' } });
  await get(`${base1}${p}`, { headers: { 'accept-language': 'fr' } });
  const en = await get(`${base2}${p}`, { headers: { 'accept-language': 'en' } });
  const fr = await get(`${base2}${p}`, { headers: { 'accept-language': 'fr' } });
  assert.match(status(en), /hit/);
  assert.match(status(fr), /hit/);
  assert.equal(en.json<CacheBody>().lang, 'en');
  assert.equal(fr.json<CacheBody>().lang, 'fr');

  const q = `/me/x?${CC}`;
  await get(`${base1}${q}`, { headers: { 'x-api-key': keyA } });
  await get(`${base1}${q}`, { headers: { 'x-api-key': keyB } });
  const a = await get(`${base2}${q}`, { headers: { 'x-api-key': keyA } });
  const b = await get(`${base2}${q}`, { headers: { 'x-api-key': keyB } });
  assert.match(status(a), /hit/);
  assert.equal(a.json<CacheBody>().consumer, 'alice');
  assert.equal(b.json<CacheBody>().consumer, 'bob');
  assert.equal(up.count('/me/x'), 2);
});

test('purge by prefix and by key in Redis', async () => {
  await get(`${base1}/pub/p/1?${CC}`);
  await get(`${base1}/pub/p/2?${CC}`);
  await get(`${base1}/pub/q/1?${CC}`);
  const store = cacheStoresOf(gw1.runtime.services)[0] as RedisCacheStore;
  assert.ok(store instanceof RedisCacheStore);
  assert.equal(await store.purge({ prefix: '/pub/p/' }), 2);
  assert.equal(status(await get(`${base2}/pub/p/1?${CC}`)), 'portcullis; fwd=uri-miss; stored');
  assert.match(status(await get(`${base2}/pub/q/1?${CC}`)), /hit/);
  assert.equal(await store.purge({ key: `/pub/q/1?${CC} ${HOST} pub *` }), 1);
  assert.equal(status(await get(`${base1}/pub/q/1?${CC}`)), 'portcullis; fwd=uri-miss; stored');
});

test('Redis unreachable: every request is a miss served by the upstream, quickly, never an error', async () => {
  const { gw, base } = await startGateway(cfg('redis://127.0.0.1:1', `${prefix}down:`));
  try {
    const p = `${base}/pub/down?${CC}`;
    for (let i = 0; i < 3; i++) {
      const r = await within(get(p), 2000, 'request with Redis down');
      assert.equal(r.status, 200);
      assert.match(status(r), /fwd=uri-miss/);
    }
    assert.equal(up.count('/pub/down'), 3);
  } finally {
    await gw.close(0);
  }
});

test('credential headers never reach Redis: not in lookups, and a response that varies on one is not stored', async () => {
  const store = cacheStoresOf(gw1.runtime.services)[0] as RedisCacheStore;
  const sent: string[] = [];
  const orig = store.client.sendCommand.bind(store.client);
  store.client.sendCommand = ((cmd: Parameters<typeof orig>[0], ...rest: unknown[]) => {
    sent.push(...cmd.args.map(String));
    return (orig as (...a: unknown[]) => unknown)(cmd, ...rest);
  }) as typeof store.client.sendCommand;
  try {
    const r = await get(`${base1}/me/secret?${CC}`, { headers: { 'x-api-key': keyA, dpop: 'proof-value-123', 'accept-language': 'en' } });
    assert.equal(r.status, 200);
    assert.ok(sent.includes('accept-language'), 'ordinary headers are sent (the script picks the Vary ones)');
    assert.ok(!sent.some((a) => a.includes(keyA) || a.includes('proof-value-123')), 'no credential in any Redis command');
    const varying = await get(`${base1}/pub/vary-key?${CC}&vary=X-API-Key`, { headers: { 'x-api-key': keyB } });
    assert.equal(status(varying), 'portcullis; fwd=uri-miss');
    assert.ok(!sent.some((a) => a.includes(keyB)));
  } finally {
    store.client.sendCommand = orig;
  }
});

test('a key keeps at most MAX_VARIANTS_PER_KEY Vary variants in Redis; the stored ones keep serving', async () => {
  const store = cacheStoresOf(gw1.runtime.services)[0] as RedisCacheStore;
  const entry = (lang: string): CachedResponse => new CachedResponse(200, [], Buffer.from(lang), Date.now(), Date.now() + 60_000, 0);
  const primary = `/variants ${HOST} pub *`;
  for (let i = 0; i < MAX_VARIANTS_PER_KEY + 20; i++) store.store(primary, 'accept-language', `accept-language=l${i}\n`, entry(`l${i}`));
  const key = `${prefix}{${primary}}`;
  await store.client.ping(); // one connection, commands in order: every store above has run
  assert.equal(await redis.hlen(key), MAX_VARIANTS_PER_KEY + 1, 'the variants plus the Vary field');
  assert.equal((await store.lookup(primary, { 'accept-language': 'l0' }, Date.now(), new Set()))?.body.toString(), 'l0');
  assert.equal(await store.lookup(primary, { 'accept-language': `l${MAX_VARIANTS_PER_KEY + 5}` }, Date.now(), new Set()), undefined);
});
