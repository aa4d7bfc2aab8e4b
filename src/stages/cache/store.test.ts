import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CachedResponse, decodeEntry, encodeEntry, parseCacheControl, variantOf } from './entry.js';
import { MemoryCacheStore } from './store.js';
import { compileCache } from './cache.js';
import { testCompileEnv } from '../../../test/helpers/compile-env.js';

const entry = (body: string, ttlMs = 60_000, headers: string[] = ['content-type', 'text/plain']) =>
  new CachedResponse(200, headers, Buffer.from(body), Date.now(), Date.now() + ttlMs, 0);

test('parseCacheControl: directives, case, quoted and invalid deltas', () => {
  assert.deepEqual(parseCacheControl('Public, MAX-AGE=60, s-maxage="120"'), { noStore: false, noCache: false, private: false, maxAge: 60, sMaxAge: 120 });
  assert.deepEqual(parseCacheControl(['no-store', 'private="set-cookie"']), { noStore: true, noCache: false, private: true, maxAge: undefined, sMaxAge: undefined });
  assert.equal(parseCacheControl('max-age=abc').maxAge, 0, 'invalid max-age = stale');
  assert.equal(parseCacheControl('no-cache').noCache, true);
});

test('variantOf: normalized values, absent distinct from empty', () => {
  assert.equal(variantOf('', { 'accept-language': 'en' }), '');
  assert.equal(variantOf('accept-encoding,accept-language', { 'accept-encoding': ' gzip ,  br ', 'accept-language': 'en' }), 'accept-encoding=gzip,br\naccept-language=en\n');
  assert.notEqual(variantOf('accept-language', {}), variantOf('accept-language', { 'accept-language': '' }));
});

test('encodeEntry/decodeEntry round trip; garbage decodes to undefined', () => {
  const e = new CachedResponse(203, ['x-a', '1', 'set-list', ['a', 'b']], Buffer.from([0, 1, 2, 255]), 1000, 2000, 7);
  const d = decodeEntry(encodeEntry(e))!;
  assert.deepEqual({ ...d, body: [...d.body] }, { ...e, body: [...e.body] });
  assert.equal(decodeEntry(Buffer.from('nope')), undefined);
  assert.equal(decodeEntry(Buffer.from([0, 0, 0, 9, 123])), undefined);
});

test('memory store: LRU by bytes, expiry, Vary marks, purge', () => {
  const s = new MemoryCacheStore(3000);
  const now = Date.now();
  s.store('/a', '', '', entry('a'.repeat(900)));
  s.store('/b', '', '', entry('b'.repeat(900)));
  s.store('/c', '', '', entry('c'.repeat(900)));
  assert.ok(s.lookup('/a', {}, now)); // a becomes most recently used
  s.store('/d', '', '', entry('d'.repeat(900)));
  assert.ok(s.size <= 3000);
  assert.equal(s.lookup('/b', {}, now), undefined, 'least recently used evicted');
  assert.ok(s.lookup('/a', {}, now));
  // Larger than the whole store: not stored, nothing evicted for it.
  s.store('/huge', '', '', entry('h'.repeat(5000)));
  assert.equal(s.lookup('/huge', {}, now), undefined);
  assert.ok(s.lookup('/a', {}, now));
  // Expired: a miss, and its bytes are released.
  s.store('/old', '', '', entry('o', 1));
  assert.equal(s.lookup('/old', {}, now + 10), undefined);
  // Vary
  const v = 'accept-language';
  s.store('/v', v, variantOf(v, { 'accept-language': 'en' }), entry('en'));
  s.store('/v', v, variantOf(v, { 'accept-language': 'fr' }), entry('fr'));
  assert.equal(s.lookup('/v', { 'accept-language': 'fr' }, now)?.body.toString(), 'fr');
  assert.equal(s.lookup('/v', { 'accept-language': 'de' }, now), undefined);
  return (async () => {
    assert.equal(await s.purge({ key: '/v' }), 2);
    assert.equal(s.lookup('/v', { 'accept-language': 'en' }, now), undefined);
    assert.ok(await s.purge({ prefix: '/' }) >= 1);
    assert.equal(s.count, 0);
    assert.equal(s.size, 0);
  })();
});

test('compile: a redis store needs a URL (caching.redis.url or a redis state block)', () => {
  const env = testCompileEnv({ config: { caching: { store: 'redis' } } });
  assert.throws(() => compileCache({}, env), /caching\.redis\.url/);
});

test('relayCachePurge: the primary relays a worker\'s purge to every other live worker, ignores other messages', async () => {
  const { relayCachePurge } = await import('../../services/cache-purge.js');
  type W = Parameters<typeof relayCachePurge>[0];
  const sent: [string, unknown][] = [];
  const fake = (id: string, dead = false) => ({ isDead: () => dead, send: (m: unknown) => { sent.push([id, m]); return true; } }) as unknown as W;
  const a = fake('a'), b = fake('b'), c = fake('c', true);
  assert.equal(relayCachePurge(a, { type: 'state', batch: [] }, [a, b, c]), false);
  assert.equal(relayCachePurge(a, { type: 'cache-purge', spec: { prefix: '/p', extra: 1 } }, [a, b, c, undefined]), true);
  assert.deepEqual(sent, [['b', { type: 'cache-purge', spec: { prefix: '/p' } }]]);
});
