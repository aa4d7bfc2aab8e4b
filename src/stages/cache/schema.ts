// Response caching configuration: the route `cache:` block (opt-in per route) and the top-level
// `caching:` block (store, size bound, status header). See docs/caching.md.
import { Type, type Static } from '@sinclair/typebox';
import { Obj, Ms, PosInt, HeaderName } from '../../config/schema-kit.js';

/** RFC 9110 15.1 "heuristically cacheable" codes the gateway passes through unchanged (5xx become problems). */
export const DEFAULT_CACHEABLE_STATUS = [200, 203, 204, 300, 301, 308, 404, 405, 410, 414] as const;
export const DEFAULT_MAX_OBJECT_BYTES = 1024 * 1024;
export const DEFAULT_COALESCE_WAIT_MS = 5000;

/** Route-level block. */
export const CacheSchema = Obj({
  ttlSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 31_536_000, default: 0, description: 'Freshness lifetime when the upstream gives none (no s-maxage, max-age or Expires); 0 = such responses are not stored' })),
  maxTtlSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 31_536_000, description: 'Upper bound on any freshness lifetime, including the upstream\'s' })),
  public: Type.Optional(Type.Boolean({ default: false, description: 'true: one cached response is shared by every client. false (default): the cache key includes the authenticated identity, so a client only ever gets responses fetched for itself' })),
  methods: Type.Optional(Type.Array(Type.Union([Type.Literal('GET'), Type.Literal('HEAD')]), { minItems: 1, uniqueItems: true, default: ['GET', 'HEAD'], description: 'Methods answered from the cache (HEAD is answered from a stored GET response)' })),
  keyHeaders: Type.Optional(Type.Array(HeaderName, { maxItems: 16, description: 'Request headers whose values are part of the cache key (besides the upstream\'s Vary)' })),
  statusCodes: Type.Optional(Type.Array(Type.Integer({ minimum: 200, maximum: 599 }), { minItems: 1, uniqueItems: true, description: `Response codes that may be stored (default ${DEFAULT_CACHEABLE_STATUS.join(', ')})` })),
  maxObjectBytes: Type.Optional(PosInt('Largest response body stored (larger ones pass through)', 256 * 1024 * 1024)),
  coalesce: Type.Optional(Type.Boolean({ default: true, description: 'Concurrent misses of one key wait for the first one\'s upstream response instead of each going upstream' })),
  coalesceWaitMs: Type.Optional(Ms('How long a coalesced request waits for the first one before going upstream itself', DEFAULT_COALESCE_WAIT_MS)),
});
export type CacheConfig = Static<typeof CacheSchema>;

/** Top-level block (shared settings). */
export const CacheGlobalSchema = Obj({
  store: Type.Optional(Type.Union([Type.Literal('memory'), Type.Literal('redis')], { default: 'memory', description: 'memory: per process, LRU bounded by maxBytes; redis: shared by every process and node' })),
  maxBytes: Type.Optional(PosInt('memory store: total bytes of stored responses (bodies, headers and keys); least recently used ones are evicted first', 2 ** 40)),
  cacheStatusHeader: Type.Optional(Type.Union([HeaderName, Type.Literal('')], { default: 'Cache-Status', description: 'RFC 9211 Cache-Status header on every response of a cached route ("" = none)' })),
  redis: Type.Optional(Obj({
    url: Type.Optional(Type.String({ pattern: '^rediss?://', description: 'default: the url of the `state:` block when it is redis' })),
    keyPrefix: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_.:-]*$', default: 'portcullis:cache:' })),
    commandTimeoutMs: Type.Optional(Ms('A lookup that takes longer is a miss (the request goes upstream)', 100)),
  })),
});
export type CacheGlobalConfig = Static<typeof CacheGlobalSchema>;
