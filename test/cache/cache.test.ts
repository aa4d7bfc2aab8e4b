// Response caching through a running gateway with the memory store: hit/miss/bypass, freshness sources,
// no-store/no-cache/private, Vary, Set-Cookie, per-consumer isolation, coalescing, HEAD, LRU by bytes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Gateway } from '../../src/gateway/gateway.js';
import { config, get, startGateway } from '../helpers/gateway.js';
import { consumersWithKeys } from '../helpers/keys.js';
import { startCacheUpstream, type CacheUpstream, type CacheBody } from './upstream.js';
import { cacheStoresOf } from '../../src/services/cache-purge.js';
import type { MemoryCacheStore } from '../../src/stages/cache/store.js';

let up: CacheUpstream;
let gw: Gateway;
let base: string;
const { keys: [keyA, keyB], identity } = consumersWithKeys('alice', 'bob');

before(async () => {
  up = await startCacheUpstream();
  const g = await startGateway(config({
    upstreams: { u: { targets: [{ url: up.url }] } },
    caching: { maxBytes: 64 * 1024 },
    identity,
    routes: [
      { id: 'pub', match: { pathPrefix: '/pub' }, upstream: 'u', cache: { public: true, maxObjectBytes: 20 * 1024 } },
      { id: 'def', match: { pathPrefix: '/ttl' }, upstream: 'u', cache: { public: true, ttlSeconds: 30, maxTtlSeconds: 60 } },
      { id: 'priv', match: { pathPrefix: '/me' }, upstream: 'u', cache: {}, authentication: { methods: [{ apiKey: {} }], forward: { consumer: 'X-Consumer' } } },
      { id: 'anon', match: { pathPrefix: '/anon' }, upstream: 'u', cache: {} },
      // api key optional: callers without one get the shared `anonymous` identity
      { id: 'optional', match: { pathPrefix: '/optional' }, upstream: 'u', cache: {}, authentication: { methods: [{ apiKey: {} }], anonymous: true } },
    ],
  }));
  gw = g.gw;
  base = g.base;
});

after(async () => {
  await gw.close(0);
  await up.close();
});

const body = (r: { json<T>(): T }) => r.json<CacheBody>();

test('miss then hit: one upstream request, Age and Cache-Status, gateway headers on the hit', async () => {
  const a = await get(`${base}/pub/a?cc=max-age%3D60`);
  assert.equal(a.status, 200);
  assert.equal(a.headers['cache-status'], 'portcullis; fwd=uri-miss; stored');
  const b = await get(`${base}/pub/a?cc=max-age%3D60`);
  assert.equal(b.status, 200);
  assert.match(String(b.headers['cache-status']), /^portcullis; hit; ttl=(58|59|60)$/);
  assert.equal(b.body, a.body);
  assert.equal(b.headers.age, '0');
  assert.equal(b.headers['content-length'], String(Buffer.byteLength(a.body)));
  assert.equal(b.headers['x-content-type-options'], 'nosniff');
  assert.ok(b.headers['x-request-id'] !== undefined && b.headers['x-request-id'] !== a.headers['x-request-id']);
  assert.equal(up.count('/pub/a'), 1);
  // Another query string is another key.
  await get(`${base}/pub/a?cc=max-age%3D60&x=1`);
  assert.equal(up.count('/pub/a'), 2);
});

test('HEAD is answered from a stored GET; a HEAD miss is never stored', async () => {
  const h1 = await get(`${base}/pub/head?cc=max-age%3D60`, { method: 'HEAD' });
  assert.equal(h1.headers['cache-status'], 'portcullis; fwd=uri-miss');
  const g = await get(`${base}/pub/head?cc=max-age%3D60`);
  assert.equal(g.headers['cache-status'], 'portcullis; fwd=uri-miss; stored');
  const h2 = await get(`${base}/pub/head?cc=max-age%3D60`, { method: 'HEAD' });
  assert.match(String(h2.headers['cache-status']), /hit/);
  assert.equal(h2.body, '');
  assert.equal(h2.headers['content-length'], String(Buffer.byteLength(g.body)));
  assert.equal(up.count('/pub/head'), 2);
});

test('freshness: s-maxage wins over max-age, Expires without max-age, upstream Age counts, ttlSeconds default and cap', async () => {
  await get(`${base}/pub/smax?cc=max-age%3D0%2C%20s-maxage%3D60`);
  assert.match(String((await get(`${base}/pub/smax?cc=max-age%3D0%2C%20s-maxage%3D60`)).headers['cache-status']), /hit/);

  await get(`${base}/pub/exp?expires=%2B60`);
  assert.match(String((await get(`${base}/pub/exp?expires=%2B60`)).headers['cache-status']), /hit/);
  // Expires in the past and an invalid Expires: not stored.
  for (const e of ['Thu, 01 Jan 1970 00:00:00 GMT', '0']) {
    const p = `${base}/pub/exp-old?expires=${encodeURIComponent(e)}`;
    assert.equal((await get(p)).headers['cache-status'], 'portcullis; fwd=uri-miss');
    assert.equal((await get(p)).headers['cache-status'], 'portcullis; fwd=uri-miss');
  }
  // Already older than its lifetime on arrival: not stored. Partly aged: Age continues from it.
  assert.equal((await get(`${base}/pub/aged?cc=max-age%3D60&age=60`)).headers['cache-status'], 'portcullis; fwd=uri-miss');
  await get(`${base}/pub/aged2?cc=max-age%3D60&age=20`);
  const aged = await get(`${base}/pub/aged2?cc=max-age%3D60&age=20`);
  assert.equal(aged.headers.age, '20');
  assert.match(String(aged.headers['cache-status']), /hit; ttl=(39|40)/);

  // No freshness information: not stored on a route without ttlSeconds, stored for ttlSeconds otherwise.
  await get(`${base}/pub/none`);
  assert.equal((await get(`${base}/pub/none`)).headers['cache-status'], 'portcullis; fwd=uri-miss');
  await get(`${base}/ttl/none`);
  assert.match(String((await get(`${base}/ttl/none`)).headers['cache-status']), /hit; ttl=(29|30)/);
  await get(`${base}/ttl/long?cc=max-age%3D3600`);
  assert.match(String((await get(`${base}/ttl/long?cc=max-age%3D3600`)).headers['cache-status']), /hit; ttl=(59|60)$/);
});

test('response no-store, no-cache, Vary: *, Set-Cookie and non-cacheable statuses are never stored', async () => {
  for (const q of ['cc=no-store%2C%20max-age%3D60', 'cc=no-cache%2C%20max-age%3D60', 'cc=max-age%3D60&vary=*', 'cc=max-age%3D60&cookie=1', 'cc=max-age%3D60&status=201', 'cc=max-age%3D60&vary=Cookie']) {
    const p = `${base}/pub/never?${q}`;
    const before = up.count('/pub/never');
    assert.equal((await get(p)).headers['cache-status'], 'portcullis; fwd=uri-miss', q);
    assert.equal((await get(p)).headers['cache-status'], 'portcullis; fwd=uri-miss', q);
    assert.equal(up.count('/pub/never') - before, 2, q);
  }
});

test('private: never stored on a public route; stored per identity on a per-identity route', async () => {
  const p = `${base}/pub/private?cc=private%2C%20max-age%3D60`;
  await get(p);
  assert.equal((await get(p)).headers['cache-status'], 'portcullis; fwd=uri-miss');
  const q = `${base}/me/private?cc=private%2C%20max-age%3D60`;
  await get(q, { headers: { 'x-api-key': keyA } });
  const hit = await get(q, { headers: { 'x-api-key': keyA } });
  assert.match(String(hit.headers['cache-status']), /hit/);
  assert.equal(body(hit).consumer, 'alice');
});

test('per-consumer isolation: two API keys never see each other\'s cached response', async () => {
  const p = `${base}/me/orders?cc=public%2C%20max-age%3D60`;
  const a1 = await get(p, { headers: { 'x-api-key': keyA } });
  const b1 = await get(p, { headers: { 'x-api-key': keyB } });
  assert.equal(b1.headers['cache-status'], 'portcullis; fwd=uri-miss; stored');
  const a2 = await get(p, { headers: { 'x-api-key': keyA } });
  const b2 = await get(p, { headers: { 'x-api-key': keyB } });
  assert.match(String(a2.headers['cache-status']), /hit/);
  assert.match(String(b2.headers['cache-status']), /hit/);
  assert.equal(body(a2).consumer, 'alice');
  assert.equal(body(b2).consumer, 'bob');
  assert.equal(a2.body, a1.body);
  assert.equal(b2.body, b1.body);
  assert.equal(up.count('/me/orders'), 2);
  // No credential: rejected before the cache; never a cached response.
  assert.equal((await get(p)).status, 401);
});

test('requests with credentials the gateway did not check bypass a per-identity route', async () => {
  const p = `${base}/anon/x?cc=max-age%3D60`;
  await get(p);
  assert.match(String((await get(p)).headers['cache-status']), /hit/);
  const withAuth = await get(p, { headers: { authorization: 'Bearer someone-else' } });
  assert.equal(withAuth.headers['cache-status'], 'portcullis; fwd=bypass');
  const withCookie = await get(p, { headers: { cookie: 'sid=1' } });
  assert.equal(withCookie.headers['cache-status'], 'portcullis; fwd=bypass');
  assert.equal(up.count('/anon/x'), 3);
});

test('the shared anonymous identity is no identity: a cookie or an unchecked token bypasses, plain anonymous calls still hit', async () => {
  const p = `${base}/optional/x?cc=max-age%3D60`;
  const victim = await get(p, { headers: { cookie: 'sid=victim' } });
  assert.equal(victim.headers['cache-status'], 'portcullis; fwd=bypass');
  const other = await get(p, { headers: { cookie: 'sid=other' } });
  assert.equal(other.headers['cache-status'], 'portcullis; fwd=bypass', 'never the victim\'s stored response');
  assert.equal((await get(p, { headers: { authorization: 'Bearer xyz' } })).headers['cache-status'], 'portcullis; fwd=bypass');
  assert.equal(up.count('/optional/x'), 3);
  // without credentials the anonymous response is shared, as on a route without authentication
  await get(p);
  assert.match(String((await get(p)).headers['cache-status']), /hit/);
  assert.equal(up.count('/optional/x'), 4);
  // a verified key gets its own entry
  const withKey = await get(p, { headers: { 'x-api-key': keyA } });
  assert.match(String(withKey.headers['cache-status']), /miss/);
});

test('request Cache-Control: no-store bypasses; no-cache fetches anew and stores; other methods are labelled', async () => {
  const p = `${base}/pub/req?cc=max-age%3D60`;
  const first = await get(p);
  const ns = await get(p, { headers: { 'cache-control': 'no-store' } });
  assert.equal(ns.headers['cache-status'], 'portcullis; fwd=request');
  const nc = await get(p, { headers: { 'cache-control': 'no-cache' } });
  assert.equal(nc.headers['cache-status'], 'portcullis; fwd=request; stored');
  assert.notEqual(nc.body, first.body);
  const hit = await get(p);
  assert.equal(hit.body, nc.body, 'the refreshed response replaced the old one');
  const pragma = await get(p, { headers: { pragma: 'no-cache' } });
  assert.equal(pragma.headers['cache-status'], 'portcullis; fwd=request; stored');
  const post = await get(p, { method: 'POST', body: 'x' });
  assert.equal(post.headers['cache-status'], 'portcullis; fwd=method');
  assert.equal(up.count('/pub/req'), 5);
});

test('Vary: Accept-Language and Accept-Encoding select the stored variant', async () => {
  const p = `${base}/pub/vary?cc=max-age%3D60&vary=Accept-Language%2C%20Accept-Encoding`;
  const en = await get(p, { headers: { 'accept-language': 'en', 'accept-encoding': 'gzip' } });
  const fr = await get(p, { headers: { 'accept-language': 'fr', 'accept-encoding': 'gzip' } });
  assert.equal(fr.headers['cache-status'], 'portcullis; fwd=uri-miss; stored');
  const en2 = await get(p, { headers: { 'accept-language': 'en', 'accept-encoding': 'gzip' } });
  const fr2 = await get(p, { headers: { 'accept-language': 'fr', 'accept-encoding': 'gzip' } });
  assert.equal(body(en2).lang, 'en');
  assert.equal(body(fr2).lang, 'fr');
  assert.equal(en2.body, en.body);
  assert.equal(fr2.body, fr.body);
  assert.match(String(en2.headers['cache-status']), /hit/);
  const br = await get(p, { headers: { 'accept-language': 'en', 'accept-encoding': 'br' } });
  assert.equal(body(br).enc, 'br');
  const none = await get(p);
  assert.equal(none.headers['cache-status'], 'portcullis; fwd=uri-miss; stored');
  assert.equal(up.count('/pub/vary'), 4);
});

test('coalescing: 20 concurrent misses of one key make one upstream request', async () => {
  const p = `${base}/pub/slow?cc=max-age%3D60&delay=150`;
  const all = await Promise.all(Array.from({ length: 20 }, () => get(p)));
  assert.equal(up.count('/pub/slow'), 1);
  for (const r of all) { assert.equal(r.status, 200); assert.equal(r.body, all[0]!.body); }
  assert.equal(all.filter((r) => String(r.headers['cache-status']).includes('hit')).length, 19);
});

test('coalescing: when the leader\'s response is not storable, followers go upstream themselves', async () => {
  const p = `${base}/pub/slow-nostore?cc=no-store&delay=100`;
  const all = await Promise.all(Array.from({ length: 5 }, () => get(p)));
  for (const r of all) assert.equal(r.status, 200);
  assert.equal(up.count('/pub/slow-nostore'), 5);
  assert.equal(new Set(all.map((r) => r.body)).size, 5);
});

test('objects over maxObjectBytes pass through unstored (Content-Length and chunked)', async () => {
  const big = `${base}/pub/big?cc=max-age%3D60&size=30000`;
  assert.equal((await get(big)).body.length, 30000);
  assert.equal((await get(big)).headers['cache-status'], 'portcullis; fwd=uri-miss');
  const chunked = `${base}/pub/bigc?cc=max-age%3D60&size=30000&chunked=1`;
  assert.equal((await get(chunked)).body.length, 30000);
  assert.equal((await get(chunked)).headers['cache-status'], 'portcullis; fwd=uri-miss; stored');
  assert.equal(up.count('/pub/bigc'), 2, 'streamed past the bound: dropped, not stored');
  const small = `${base}/pub/smallc?cc=max-age%3D60&size=1000&chunked=1`;
  await get(small);
  const hit = await get(small);
  assert.match(String(hit.headers['cache-status']), /hit/);
  assert.equal(hit.headers['content-length'], '1000');
});

test('memory LRU by bytes: total stays under maxBytes, least recently used evicted first', async () => {
  const store = cacheStoresOf(gw.runtime.services)[0] as MemoryCacheStore;
  // 64 KiB store, ~15 KiB objects: 4 fit.
  const url = (i: number) => `${base}/pub/lru/${i}?cc=max-age%3D60&size=15000`;
  for (let i = 0; i < 4; i++) await get(url(i));
  await get(url(0)); // 0 is now the most recently used
  await get(url(4)); // evicts the least recently used: 1
  assert.ok(store.size <= store.maxBytes);
  assert.match(String((await get(url(0))).headers['cache-status']), /hit/);
  assert.equal((await get(url(1))).headers['cache-status'], 'portcullis; fwd=uri-miss; stored');
});
