// The one source of truth for Portcullis configuration: TypeBox builds both the JSON Schema
// (validated with ajv, published as schema/portcullis.schema.json) and the TypeScript types.
// Every object is closed (`additionalProperties: false`): a typo must fail validation, never
// silently disable a security setting.
import { Type, type Static, type TSchema, type TOptional } from '@sinclair/typebox';

import { Obj, Ms, PosInt, Cidr, HeaderName } from './schema-kit.js';
export { Obj } from './schema-kit.js';
import { IdentitySchema } from '../identity/schema.js';
import { StateSchema } from '../state/schema.js';
import { STAGES } from '../pipeline/registry.js';

// ---------------------------------------------------------------- listeners
export const ListenerLimitsSchema = Obj({
  maxHeaderBytes: Type.Optional(PosInt('Total request-line + header bytes; larger requests get 431', 1 << 20)),
  maxHeaderCount: Type.Optional(PosInt('Maximum number of request header fields; more get 431', 1000)),
  maxUrlLength: Type.Optional(PosInt('Maximum request-target length; longer get 414', 1 << 20)),
  maxBodyBytes: Type.Optional(Type.Integer({ minimum: 0, description: 'Maximum request body; larger get 413 (Content-Length up front and while streaming)' })),
  headersTimeoutMs: Type.Optional(Ms('Time allowed to receive the complete request head (slowloris defence); 408 after')),
  requestTimeoutMs: Type.Optional(Ms('Time allowed to receive the whole request; 408 after')),
  keepAliveTimeoutMs: Type.Optional(Ms('Idle time before a keep-alive connection is closed')),
  maxConnections: Type.Optional(PosInt('Maximum open connections on this listener')),
  maxConnectionsPerIp: Type.Optional(PosInt('Maximum open connections from one client IP (socket peer), per worker process: a node with N workers admits up to N times this')),
  maxRequestsPerConnection: Type.Optional(Type.Integer({ minimum: 0, description: '0 = unlimited' })),
}, { description: 'Protocol limits; every field has a safe default' });
export type ListenerLimits = Static<typeof ListenerLimitsSchema>;

// ---------------------------------------------------------------- TLS (termination)
const TlsVersion = Type.Union([Type.Literal('TLSv1.2'), Type.Literal('TLSv1.3')]);

export const CertificateSchema = Obj({
  cert: Type.String({ minLength: 1, description: 'PEM certificate chain file (relative to the config file)' }),
  key: Type.String({ minLength: 1, description: 'PEM private key file (may be encrypted)' }),
  passphrase: Type.Optional(Type.String({ description: 'Passphrase of an encrypted key; use ${ENV_VAR}' })),
  serverNames: Type.Optional(Type.Array(Type.String({ pattern: '^(\\*\\.)?[A-Za-z0-9.-]+$' }), { minItems: 1, description: 'SNI names served with this certificate (exact or *.wildcard); default: the names in the certificate' })),
});

export const ListenerTlsSchema = Obj({
  certificates: Type.Array(CertificateSchema, { minItems: 1, description: 'The first one is the default for clients without a matching SNI name' }),
  minVersion: Type.Optional(Type.Union([TlsVersion], { default: 'TLSv1.3' })),
  ciphers: Type.Optional(Type.String({ description: 'TLS 1.2 cipher list (OpenSSL syntax); only forward-secret AEAD suites are accepted' })),
  allowInsecureCiphers: Type.Optional(Type.Boolean({ default: false, description: 'Accept TLS 1.2 ciphers without forward secrecy or AEAD (validate warns)' })),
  http2: Type.Optional(Type.Boolean({ default: true, description: 'Offer h2 by ALPN (HTTP/1.1 is always offered)' })),
  watch: Type.Optional(Type.Boolean({ default: true, description: 'Reload certificates when their files change' })),
  expiryWarningDays: Type.Optional(Type.Integer({ minimum: 0, maximum: 3650, default: 21 })),
  clientCertificate: Type.Optional(Obj({
    mode: Type.Union([Type.Literal('request'), Type.Literal('require')], { description: 'request: ask, routes decide; require: refuse the handshake without a valid client certificate' }),
    ca: Type.String({ minLength: 1, description: 'PEM bundle of CAs that issue client certificates' }),
  })),
});
export type ListenerTlsConfig = Static<typeof ListenerTlsSchema>;

export const Http2LimitsSchema = Obj({
  maxConcurrentStreams: Type.Optional(PosInt('Concurrent streams per HTTP/2 connection', 10_000)),
  maxHeaderListSize: Type.Optional(PosInt('Maximum decoded header list size (bytes)', 1 << 20)),
  maxResetsPerSecond: Type.Optional(PosInt('Client stream resets per second before the connection is closed (rapid-reset defence)', 100_000)),
});

export const HstsSchema = Obj({
  maxAge: Type.Optional(Type.Integer({ minimum: 0, default: 31_536_000, description: 'Seconds; at least one year unless explicitly lowered' })),
  includeSubDomains: Type.Optional(Type.Boolean({ default: true })),
  preload: Type.Optional(Type.Boolean({ default: false })),
});

export const ListenerSchema = Obj({
  name: Type.String({ minLength: 1, pattern: '^[A-Za-z0-9_.-]+$' }),
  address: Type.Optional(Type.String({ default: '0.0.0.0', description: 'Bind address' })),
  port: Type.Integer({ minimum: 0, maximum: 65535, description: '0 = an ephemeral port (tests)' }),
  limits: Type.Optional(ListenerLimitsSchema),
  tls: Type.Optional(ListenerTlsSchema),
  http2: Type.Optional(Http2LimitsSchema),
  hsts: Type.Optional(Type.Union([HstsSchema, Type.Literal(false)], { description: 'Strict-Transport-Security on HTTPS responses (on by default; false to disable)' })),
  plaintext: Type.Optional(Obj({
    mode: Type.Union([Type.Literal('redirect'), Type.Literal('reject'), Type.Literal('serve')], { description: 'What a plain-HTTP listener does: 308 to https, refuse, or serve' }),
    httpsPort: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, default: 443, description: 'Port in redirect targets' })),
  }, { description: 'Plain-HTTP listeners only' })),
});
export type ListenerConfig = Static<typeof ListenerSchema>;

// ---------------------------------------------------------------- upstreams
export const TargetSchema = Obj({
  url: Type.String({ pattern: '^https?://[^/?#]+/?$', description: 'Origin of one target, e.g. http://10.0.0.5:8080' }),
  weight: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000, default: 1, description: '0 = drained' })),
});

export const HashOnSchema = Type.Union([
  Obj({ header: HeaderName }),
  Obj({ cookie: Type.String({ minLength: 1 }) }),
  Obj({ clientIp: Type.Literal(true) }),
]);

export const ActiveHealthCheckSchema = Obj({
  path: Type.String({ pattern: '^/', default: '/' }),
  intervalMs: Type.Optional(Ms('Probe interval', 5000)),
  timeoutMs: Type.Optional(Ms('Probe timeout', 2000)),
  healthyThreshold: Type.Optional(PosInt('Consecutive successes to mark healthy', 100)),
  unhealthyThreshold: Type.Optional(PosInt('Consecutive failures to mark unhealthy', 100)),
  expectStatus: Type.Optional(Type.Array(Type.Integer({ minimum: 100, maximum: 599 }), { minItems: 1, description: 'Healthy statuses (default 200-399)' })),
  host: Type.Optional(Type.String({ description: 'Host header for probes' })),
});

export const PassiveHealthCheckSchema = Obj({
  consecutiveFailures: Type.Optional(PosInt('Failures (connect errors, timeouts, 5xx) in a row that eject a target', 1000)),
  cooldownMs: Type.Optional(Ms('How long an ejected target stays out before it is tried again', 30000)),
  failOnStatus: Type.Optional(Type.Array(Type.Integer({ minimum: 500, maximum: 599 }), { description: 'Statuses counted as failures (default 502, 503, 504)' })),
});

export const CircuitBreakerSchema = Obj({
  failureRatio: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1, description: 'Open when failures / requests in the window reach this' })),
  minRequests: Type.Optional(PosInt('Requests in the window before the ratio is judged')),
  windowMs: Type.Optional(Ms('Rolling window')),
  openMs: Type.Optional(Ms('Time the breaker stays open before a half-open probe')),
  halfOpenRequests: Type.Optional(PosInt('Trial requests allowed while half-open', 1000)),
});

export const UpstreamTimeoutsSchema = Obj({
  connectMs: Type.Optional(Ms('TCP (and TLS) connect timeout')),
  firstByteMs: Type.Optional(Ms('Time from sending the request to the response head (504 after)')),
  totalMs: Type.Optional(Ms('Whole exchange, including the response body')),
});

export const RetrySchema = Obj({
  attempts: Type.Optional(Type.Integer({ minimum: 0, maximum: 10, description: 'Extra attempts after the first (idempotent methods only)' })),
  budgetRatio: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: 'Retries may add at most this fraction of requests (retry budget)' })),
  minRetriesPerSecond: Type.Optional(Type.Integer({ minimum: 0, description: 'Retries always allowed per second regardless of the ratio' })),
  retryOnStatus: Type.Optional(Type.Array(Type.Integer({ minimum: 500, maximum: 599 }))),
});

export const UpstreamTlsSchema = Obj({
  ca: Type.Optional(Type.String({ minLength: 1, description: 'PEM CA bundle to verify https targets (default: the system store)' })),
  insecureSkipVerify: Type.Optional(Type.Boolean({ default: false, description: 'Do not verify the target certificate (validate warns)' })),
  pins: Type.Optional(Type.Array(Type.String({ pattern: '^[A-Za-z0-9+/]{43}=$' }), { minItems: 1, description: 'base64 SHA-256 SPKI pins; one must match the target certificate' })),
  cert: Type.Optional(Type.String({ minLength: 1, description: 'Client certificate (PEM) for mTLS to the upstream' })),
  key: Type.Optional(Type.String({ minLength: 1, description: 'Client key (PEM) for mTLS to the upstream' })),
  passphrase: Type.Optional(Type.String()),
  servername: Type.Optional(Type.String({ minLength: 1, description: 'SNI and verification name (default: the target host)' })),
  minVersion: Type.Optional(Type.Union([TlsVersion], { default: 'TLSv1.2' })),
});
export type UpstreamTlsConfig = Static<typeof UpstreamTlsSchema>;

export const UpstreamSchema = Obj({
  targets: Type.Array(TargetSchema, { minItems: 1 }),
  tls: Type.Optional(UpstreamTlsSchema),
  balancer: Type.Optional(Type.Union([Type.Literal('round-robin'), Type.Literal('least-requests'), Type.Literal('consistent-hash')], { default: 'round-robin' })),
  hashOn: Type.Optional(HashOnSchema),
  healthCheck: Type.Optional(Obj({
    active: Type.Optional(ActiveHealthCheckSchema),
    passive: Type.Optional(PassiveHealthCheckSchema),
  })),
  circuitBreaker: Type.Optional(CircuitBreakerSchema),
  timeouts: Type.Optional(UpstreamTimeoutsSchema),
  retries: Type.Optional(RetrySchema),
  pool: Type.Optional(Obj({
    connections: Type.Optional(PosInt('Keep-alive connections per target', 10_000)),
    keepAliveTimeoutMs: Type.Optional(Ms('Idle upstream connection lifetime')),
  })),
});
export type UpstreamConfig = Static<typeof UpstreamSchema>;

// ---------------------------------------------------------------- routes
export const HeaderMatchSchema = Type.Union([
  Obj({ present: Type.Boolean() }),
  Obj({ equals: Type.String() }),
  Obj({ oneOf: Type.Array(Type.String(), { minItems: 1 }) }),
]);

export const RouteMatchSchema = Obj({
  hosts: Type.Optional(Type.Array(Type.String({ pattern: '^(\\*\\.)?[A-Za-z0-9.-]+(:[0-9]+)?$' }), { minItems: 1, description: 'Exact host names or *.wildcard suffixes' })),
  path: Type.Optional(Type.String({ pattern: '^/', description: 'Exact path, with :param segments, or ending in /* (wildcard)' })),
  pathPrefix: Type.Optional(Type.String({ pattern: '^/', description: 'Prefix on segment boundaries: /api matches /api and /api/x, not /apix' })),
  methods: Type.Optional(Type.Array(Type.String({ pattern: '^[A-Z]+$' }), { minItems: 1 })),
  headers: Type.Optional(Type.Record(HeaderName, HeaderMatchSchema, { additionalProperties: false })),
  caseInsensitive: Type.Optional(Type.Boolean({ default: false, description: 'Match the path case-insensitively' })),
});
export type RouteMatch = Static<typeof RouteMatchSchema>;

// ---------------------------------------------------------------- stage blocks (from the registry)
type Stage = (typeof STAGES)[number];
/** `routes[].<configKey>` of every registered stage */
type StageRouteProperties = { [M in Stage as M['configKey']]: TOptional<M['schema']> };
/** top-level blocks owned by stages (`rateLimiting`, `caching`, `overload`) */
type StageGlobalProperties = { [M in Stage as NonNullable<M['global']>['key']]: TOptional<NonNullable<M['global']>['schema']> };

function stageRouteProperties(): StageRouteProperties {
  const out: Record<string, TSchema> = {};
  for (const m of STAGES) out[m.configKey] = Type.Optional(m.schema);
  return out as StageRouteProperties;
}
function stageGlobalProperties(): StageGlobalProperties {
  const out: Record<string, TSchema> = {};
  for (const m of STAGES) if (m.global !== undefined) out[m.global.key] = Type.Optional(m.global.schema);
  return out as StageGlobalProperties;
}

export const RouteLimitsSchema = Obj({
  maxBodyBytes: Type.Optional(Type.Integer({ minimum: 0, description: 'Request body limit of this route (default: the listener\'s); 413 beyond' })),
  maxResponseBodyBytes: Type.Optional(Type.Integer({ minimum: 0, description: 'Largest upstream response body a response-body stage buffers (default 8 MiB)' })),
  body: Type.Optional(Obj({
    maxDepth: Type.Optional(PosInt('JSON nesting depth', 10_000)),
    maxKeys: Type.Optional(PosInt('Object keys in one JSON document')),
    maxStringLength: Type.Optional(PosInt('Longest JSON string (key or value)')),
    maxArrayLength: Type.Optional(PosInt('Longest JSON array')),
    maxParts: Type.Optional(PosInt('multipart/form-data parts')),
    maxFields: Type.Optional(PosInt('Form fields (urlencoded or multipart)')),
    maxFieldBytes: Type.Optional(PosInt('Bytes of one form field value')),
    maxFileBytes: Type.Optional(PosInt('Bytes of one multipart file')),
    maxFiles: Type.Optional(PosInt('multipart files')),
  }, { description: 'Decoding limits of the request-body phase, on routes where a stage reads the body (docs/request-body.md)' })),
  responseBodyOverflow: Type.Optional(Type.Union([Type.Literal('error'), Type.Literal('pass')], { default: 'error', description: 'A larger response: 502 (error), or sent on unchanged without the response-body stages (pass)' })),
}, { description: 'Per-route body limits' });

export const RouteSchema = Obj({
  id: Type.String({ minLength: 1, pattern: '^[A-Za-z0-9_.:-]+$' }),
  match: RouteMatchSchema,
  upstream: Type.Optional(Type.String({ description: 'Name of an entry in upstreams' })),
  respond: Type.Optional(Obj({
    status: Type.Integer({ minimum: 200, maximum: 599 }),
    body: Type.Optional(Type.String()),
    contentType: Type.Optional(Type.String()),
  }, { description: 'Answer directly instead of proxying' })),
  stripPrefix: Type.Optional(Type.String({ pattern: '^/' })),
  rewritePath: Type.Optional(Type.String({ pattern: '^/', description: 'New upstream path; :param and * from the match are substituted' })),
  websocket: Type.Optional(Type.Boolean({ default: false })),
  preserveHost: Type.Optional(Type.Boolean({ default: false, description: 'Send the client Host upstream instead of the target host' })),
  exposeUpstreamErrors: Type.Optional(Type.Boolean({ default: false, description: 'Pass 5xx bodies from the upstream to the client' })),
  listeners: Type.Optional(Type.Array(Type.String(), { description: 'Only on these listeners (default all)' })),
  limits: Type.Optional(RouteLimitsSchema),
  ...stageRouteProperties(),
});
export type RouteConfig = Static<typeof RouteSchema>;

// ---------------------------------------------------------------- global stages
export const AccessLogSchema = Obj({
  enabled: Type.Optional(Type.Boolean({ default: true })),
  destination: Type.Optional(Type.String({ default: 'stdout', description: "'stdout', 'stderr' or a file path" })),
  redactHeaders: Type.Optional(Type.Array(HeaderName, { description: 'Extra secret-bearing headers (Authorization, Cookie, Set-Cookie, Proxy-Authorization always)' })),
  redactQuery: Type.Optional(Type.Array(Type.String(), { description: 'Query parameters whose values are redacted (defaults include token, access_token, api_key, key, password, secret)' })),
  includeHeaders: Type.Optional(Type.Array(HeaderName, { description: 'Request headers copied into the log line (redacted when secret)' })),
});

export const RequestIdSchema = Obj({
  header: Type.Optional(HeaderName),
  trustIncoming: Type.Optional(Type.Union([Type.Literal('never'), Type.Literal('trusted-proxies'), Type.Literal('always')], { default: 'trusted-proxies' })),
});

export const ServerSchema = Obj({
  workers: Type.Optional(Type.Union([Type.Literal('auto'), Type.Integer({ minimum: 1, maximum: 256 })], { default: 1 })),
  trustedProxies: Type.Optional(Type.Array(Cidr, { description: 'Peers whose Forwarded / X-Forwarded-For is believed' })),
  clientIpHeader: Type.Optional(Type.Union([Type.Literal('auto'), Type.Literal('forwarded'), Type.Literal('x-forwarded-for')], {
    default: 'auto',
    description: 'Which header trusted proxies use. auto = Forwarded if present, else X-Forwarded-For; set it explicitly if your proxy passes a client-sent Forwarded through',
  })),
  shutdownTimeoutMs: Type.Optional(Ms('Drain deadline on SIGTERM', 30000)),
  watchConfig: Type.Optional(Type.Boolean({ default: true, description: 'Reload when the config file changes' })),
  status: Type.Optional(Obj({
    enabled: Type.Optional(Type.Boolean({ default: true })),
    address: Type.Optional(Type.String({ default: '127.0.0.1' })),
    port: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535, default: 9901 })),
    adminToken: Type.Optional(Type.String({ minLength: 32, description: 'Bearer token for the admin endpoints (POST /admin/cache/purge), usually ${ENV}; else env PORTCULLIS_ADMIN_TOKEN; neither = admin endpoints disabled (403)' })),
  })),
  via: Type.Optional(Type.String({ default: 'portcullis', description: 'Pseudonym used in the Via header' })),
});

export const GatewayConfigSchema = Obj({
  $schema: Type.Optional(Type.String()),
  version: Type.Optional(Type.Literal(1)),
  server: Type.Optional(ServerSchema),
  listeners: Type.Array(ListenerSchema, { minItems: 1 }),
  upstreams: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z0-9_.-]+$' }), UpstreamSchema, { additionalProperties: false })),
  routes: Type.Array(RouteSchema, { minItems: 1 }),
  requestId: Type.Optional(RequestIdSchema),
  accessLog: Type.Optional(AccessLogSchema),
  identity: Type.Optional(IdentitySchema),
  state: Type.Optional(StateSchema),
  ...stageGlobalProperties(),
}, {
  $id: 'https://portcullis.dev/schema/portcullis.schema.json',
  title: 'Portcullis gateway configuration',
});
export type GatewayConfig = Static<typeof GatewayConfigSchema>;

export type { TSchema };
