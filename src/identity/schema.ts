// Top-level `identity:` block: who the consumers are and where credentials are checked against —
// the API key store, JWT issuers (static keys, JWKS, OIDC discovery), OAuth 2.0 introspection servers,
// app attestation verifiers and DPoP settings. Routes refer to these entries by name
// (src/stages/authentication/schema.ts, src/stages/attestation/schema.ts).
import { Type, type Static } from '@sinclair/typebox';
import { Obj, Ms, PosInt, Cidr, RefName } from '../config/schema-kit.js';

const ConsumerId = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_.@:-]+$' });
const Scalar = Type.Union([Type.String(), Type.Number(), Type.Boolean()]);
const Origin = Type.String({ pattern: '^https?://[^/?#]+$', description: 'Browser origin, e.g. https://app.example.com' });

/** Algorithms a JWS may use. `none` is not representable; HS* only where a shared secret is configured. */
export const JwsAlgorithm = Type.Union([
  Type.Literal('RS256'), Type.Literal('RS384'), Type.Literal('RS512'),
  Type.Literal('PS256'), Type.Literal('PS384'), Type.Literal('PS512'),
  Type.Literal('ES256'), Type.Literal('ES384'), Type.Literal('ES512'),
  Type.Literal('EdDSA'),
  Type.Literal('HS256'), Type.Literal('HS384'), Type.Literal('HS512'),
]);
export type JwsAlgorithmName = Static<typeof JwsAlgorithm>;

export const ConfigApiKeySchema = Obj({
  id: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.-]+$', description: 'Key id shown in logs and events (never the key)' }),
  hash: Type.String({ pattern: '^hmac-sha256:[0-9a-f]{64}$', description: 'Output of `portcullis keys hash` (HMAC-SHA256 of the key with the pepper); the key itself never goes in the config' }),
  scopes: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'Scopes of this key (default: the consumer\'s)' })),
  cidrs: Type.Optional(Type.Array(Cidr, { minItems: 1, description: 'Client IPs the key works from (default: anywhere)' })),
  origins: Type.Optional(Type.Array(Origin, { minItems: 1, description: 'Allowed Origin header values (browser keys)' })),
  expiresAt: Type.Optional(Type.String({ format: 'date-time', description: 'RFC 3339 time after which the key stops working' })),
  enabled: Type.Optional(Type.Boolean({ default: true })),
});

export const ConsumerSchema = Obj({
  id: ConsumerId,
  roles: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
  scopes: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
  metadata: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z0-9_.-]+$' }), Scalar, { additionalProperties: false, description: 'Plan, tier and other facts later stages use (e.g. rate-limit plans)' })),
  apiKeys: Type.Optional(Type.Array(ConfigApiKeySchema)),
});
export type ConsumerConfig = Static<typeof ConsumerSchema>;

export const KeyStoreSchema = Type.Union([
  Obj({
    type: Type.Literal('sqlite'),
    path: Type.String({ minLength: 1, description: 'Database file (relative to the config file); created with its schema on first use' }),
    refreshMs: Type.Optional(Type.Integer({ minimum: 50, maximum: 60_000, default: 250, description: 'How often each worker checks the store for changes (revocations take effect within this)' })),
  }),
  Obj({
    type: Type.Literal('postgres'),
    url: Type.String({ minLength: 1, description: 'postgres://user@host:5432/db — use ${ENV} for credentials' }),
    schema: Type.Optional(Type.String({ pattern: '^[a-z_][a-z0-9_]*$', default: 'portcullis' })),
    refreshMs: Type.Optional(Type.Integer({ minimum: 50, maximum: 60_000, default: 250, description: 'Change poll interval (LISTEN/NOTIFY makes most changes arrive sooner)' })),
  }),
], { description: 'Where `portcullis keys` keeps consumers and API keys (hashed)' });
export type KeyStoreConfig = Static<typeof KeyStoreSchema>;

export const StaticKeySchema = Type.Union([
  Obj({ pem: Type.String({ minLength: 1, description: 'PEM public key or certificate: inline, or a file path' }), kid: Type.Optional(Type.String()), alg: Type.Optional(JwsAlgorithm) }),
  Obj({ jwk: Type.Record(Type.String(), Type.Unknown(), { additionalProperties: false, description: 'A public JWK (private members are refused)' }) }),
  Obj({ secret: Type.String({ minLength: 1, description: 'HMAC secret (base64url or ${ENV}); at least 32 bytes' }), kid: Type.Optional(Type.String()) }),
]);

export const IssuerSchema = Obj({
  issuer: Type.String({ minLength: 1, description: 'Expected `iss` (exact match); with discovery, also where the metadata is fetched' }),
  discovery: Type.Optional(Type.Boolean({ default: false, description: 'Fetch {issuer}/.well-known/openid-configuration and use its jwks_uri' })),
  jwksUri: Type.Optional(Type.String({ pattern: '^https?://', description: 'JWKS URL (instead of discovery)' })),
  keys: Type.Optional(Type.Array(StaticKeySchema, { minItems: 1, description: 'Static verification keys' })),
  algorithms: Type.Array(JwsAlgorithm, { minItems: 1, description: 'Allowed `alg` values; the key type must match (no HS/RS confusion)' }),
  audiences: Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'Accepted `aud` values (one must be present)' }),
  leewaySec: Type.Optional(Type.Integer({ minimum: 0, maximum: 300, default: 30, description: 'Clock skew allowed for exp/nbf/iat' })),
  maxAgeSec: Type.Optional(PosInt('Refuse tokens whose iat is older than this')),
  requiredClaims: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'Claims that must be present (besides iss, aud, exp)' })),
  maxTokenBytes: Type.Optional(Type.Integer({ minimum: 256, maximum: 65_536, default: 8192 })),
  subjectClaim: Type.Optional(Type.String({ default: 'sub' })),
  consumerClaim: Type.Optional(Type.String({ description: 'Claim naming a configured consumer (its roles, scopes and metadata then apply)' })),
  rolesClaim: Type.Optional(Type.String({ description: 'Claim (dot path, e.g. realm_access.roles) holding roles' })),
  jwks: Type.Optional(Obj({
    minRefreshMs: Type.Optional(Ms('Shortest cache lifetime, whatever Cache-Control says', 60_000)),
    maxRefreshMs: Type.Optional(Ms('Longest cache lifetime', 3_600_000)),
    unknownKidCooldownMs: Type.Optional(Ms('At most one refetch per this interval when a token names an unknown kid', 30_000)),
    timeoutMs: Type.Optional(Ms('Fetch timeout', 5000)),
    ca: Type.Optional(Type.String({ minLength: 1, description: 'PEM CA bundle for an https IdP with a private CA' })),
  })),
});
export type IssuerConfig = Static<typeof IssuerSchema>;

export const IntrospectionSchema = Obj({
  endpoint: Type.String({ pattern: '^https?://', description: 'RFC 7662 introspection endpoint' }),
  clientId: Type.String({ minLength: 1 }),
  clientSecret: Type.String({ minLength: 1, description: 'Use ${ENV} or ${file:...}' }),
  clientAuth: Type.Optional(Type.Union([Type.Literal('client_secret_basic'), Type.Literal('client_secret_post')], { default: 'client_secret_basic' })),
  issuer: Type.Optional(Type.String({ description: 'Required `iss` of active tokens' })),
  audiences: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'One must be in `aud` of active tokens' })),
  timeoutMs: Type.Optional(Ms('Per call; on timeout the request fails closed (503)', 2000)),
  cacheMaxSec: Type.Optional(Type.Integer({ minimum: 0, maximum: 3600, default: 300, description: 'Active results are cached this long at most, never past the token exp' })),
  negativeCacheSec: Type.Optional(Type.Integer({ minimum: 0, maximum: 300, default: 10, description: 'Inactive results are cached this long' })),
  maxTokenBytes: Type.Optional(Type.Integer({ minimum: 16, maximum: 65_536, default: 4096 })),
  subjectClaim: Type.Optional(Type.String({ default: 'sub' })),
  consumerClaim: Type.Optional(Type.String({ description: 'Member naming a configured consumer (default client_id)' })),
  rolesClaim: Type.Optional(Type.String()),
  ca: Type.Optional(Type.String({ minLength: 1 })),
});
export type IntrospectionConfig = Static<typeof IntrospectionSchema>;

export const AttestationVerifierSchema = Obj({
  secret: Type.Optional(Type.String({ minLength: 1, description: 'Shared HMAC secret, base64 (Approov style); use ${ENV}' })),
  jwksUri: Type.Optional(Type.String({ pattern: '^https?://' })),
  keys: Type.Optional(Type.Array(StaticKeySchema, { minItems: 1 })),
  algorithms: Type.Array(JwsAlgorithm, { minItems: 1 }),
  issuer: Type.Optional(Type.String()),
  audiences: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })),
  maxLifetimeSec: Type.Optional(Type.Integer({ minimum: 1, maximum: 3600, default: 300, description: 'exp may be at most this far in the future (short-lived tokens only)' })),
  leewaySec: Type.Optional(Type.Integer({ minimum: 0, maximum: 60, default: 5 })),
});
export type AttestationVerifierConfig = Static<typeof AttestationVerifierSchema>;

export const DpopSchema = Obj({
  algorithms: Type.Optional(Type.Array(JwsAlgorithm, { minItems: 1, description: 'Allowed proof algorithms (asymmetric only; default ES256, RS256, PS256, EdDSA)' })),
  proofMaxAgeSec: Type.Optional(Type.Integer({ minimum: 1, maximum: 600, default: 60, description: 'iat window of a proof' })),
  leewaySec: Type.Optional(Type.Integer({ minimum: 0, maximum: 60, default: 5 })),
});

export const IdentitySchema = Obj({
  pepper: Type.Optional(Type.String({ minLength: 32, description: 'Server-side secret mixed into API key hashes (use ${ENV}); required when API keys are used' })),
  keyStore: Type.Optional(KeyStoreSchema),
  consumers: Type.Optional(Type.Array(ConsumerSchema)),
  issuers: Type.Optional(Type.Record(RefName, IssuerSchema, { additionalProperties: false })),
  introspection: Type.Optional(Type.Record(RefName, IntrospectionSchema, { additionalProperties: false })),
  attestation: Type.Optional(Type.Record(RefName, AttestationVerifierSchema, { additionalProperties: false })),
  dpop: Type.Optional(DpopSchema),
  verificationCache: Type.Optional(Obj({
    maxEntries: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000_000, default: 10_000, description: 'Verified tokens remembered (0 = off); never past exp' })),
  })),
}, { description: 'Consumers, API key store, token issuers and verifiers' });
export type IdentityConfig = Static<typeof IdentitySchema>;
