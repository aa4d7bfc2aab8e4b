// Route `rateLimit:` and top-level `rateLimiting:` configuration. See docs/rate-limiting.md.
import { Type, type Static } from '@sinclair/typebox';
import { Obj, PosInt, HeaderName, RefName } from '../../config/schema-kit.js';

/** What a limit counts by; several parts combine (e.g. [consumer, { header: x-tenant }]). */
export const RateKeyPartSchema = Type.Union([
  Type.Literal('ip', { description: 'client IP as derived by the gateway (trusted proxies only)' }),
  Type.Literal('consumer', { description: 'identity consumer (or identity id); client IP when anonymous' }),
  Type.Literal('apiKey', { description: 'API key id; client IP when the request used no API key' }),
  Type.Literal('route', { description: 'the route as a whole (a global per-route limit)' }),
  Obj({ header: HeaderName }, { description: 'a request header value; client IP when absent' }),
  Obj({ claim: Type.String({ minLength: 1, description: 'dotted path into the verified token claims, e.g. tenant or org.id' }) }, { description: 'a token claim; client IP when absent' }),
]);
export type RateKeyPart = Static<typeof RateKeyPartSchema>;

export const RateLimitRuleSchema = Obj({
  name: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_.-]+$', maxLength: 64, description: 'policy name in RateLimit-Policy / RateLimit headers (default: default for a route\'s first limit, limit-N for the others, <plan>-N in a plan)' })),
  algorithm: Type.Optional(Type.Union([Type.Literal('fixed-window'), Type.Literal('sliding-window'), Type.Literal('token-bucket')], { default: 'fixed-window', description: 'sliding-window = weighted two-window counter; token-bucket = GCRA' })),
  limit: PosInt('requests per window (token bucket: the refill amount per window)', 1_000_000_000),
  windowMs: PosInt('window length in ms (token bucket: the refill period of `limit` tokens)', 31 * 86_400_000),
  burst: Type.Optional(PosInt('token bucket: capacity (requests allowed at once); default = limit', 1_000_000_000)),
  by: Type.Optional(Type.Array(RateKeyPartSchema, { minItems: 1, maxItems: 8, description: 'key parts (default [ip])' })),
  mode: Type.Optional(Type.Union([Type.Literal('reject'), Type.Literal('delay')], { default: 'reject', description: 'delay = throttle: queue over-rate requests until their slot (token-bucket only)' })),
  maxDelayMs: Type.Optional(PosInt('delay mode: longest wait before a request is refused with 429', 60_000)),
  maxQueue: Type.Optional(PosInt('delay mode: most requests waiting per key in one process', 1_000_000)),
});
export type RateLimitRule = Static<typeof RateLimitRuleSchema>;

/** Route-level block. */
export const RateLimitSchema = Obj({
  limits: Type.Optional(Type.Array(RateLimitRuleSchema, { maxItems: 16 })),
  plans: Type.Optional(Type.Boolean({ default: false, description: "also apply the limits of the identity's plan (rateLimiting.plans)" })),
  onStoreError: Type.Optional(Type.Union([Type.Literal('failOpen'), Type.Literal('failClosed')], { default: 'failOpen', description: 'when the shared store (Redis) cannot answer: failOpen = a per-process local limiter decides; failClosed = 503' })),
  headers: Type.Optional(Type.Boolean({ default: true, description: 'RateLimit-Policy / RateLimit headers on successful responses too' })),
}, { description: 'Rate limiting and throttling for this route' });
export type RateLimitConfig = Static<typeof RateLimitSchema>;

/** Top-level block (shared settings). */
export const RateLimitGlobalSchema = Obj({
  plans: Type.Optional(Type.Record(RefName, Obj({ limits: Type.Array(RateLimitRuleSchema, { maxItems: 16 }) }), { additionalProperties: false, description: 'limits per consumer plan; a plan with no limits is unlimited' })),
  defaultPlan: Type.Optional(RefName),
  planMetadataKey: Type.Optional(Type.String({ minLength: 1, default: 'plan', description: 'identity metadata key naming the plan' })),
}, { description: 'Rate-limit plans shared by routes with `rateLimit.plans: true`' });
export type RateLimitGlobalConfig = Static<typeof RateLimitGlobalSchema>;
