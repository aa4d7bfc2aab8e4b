// Route `authentication:` block. Methods are tried in the listed order; a method whose credential is
// absent from the request is skipped, the first method that finds its credential decides (valid →
// identity, invalid → 401; no fall-through to a later method, so a bad token is never masked).
import { Type, type Static } from '@sinclair/typebox';
import { Obj, HeaderName, RefName } from '../../config/schema-kit.js';

export const ApiKeyMethodSchema = Obj({
  header: Type.Optional(Type.Union([HeaderName, Type.Literal(false)], { default: 'X-API-Key', description: 'Header carrying the key (false: none)' })),
  authorizationScheme: Type.Optional(Type.Boolean({ default: true, description: 'Also accept `Authorization: ApiKey <key>`' })),
  queryParam: Type.Optional(Type.String({ minLength: 1, description: 'Accept the key in this query parameter. Off unless set: query strings leak into logs and Referer headers' })),
  hideCredentials: Type.Optional(Type.Boolean({ default: true, description: 'Remove the key from the request sent upstream' })),
});

export const JwtMethodSchema = Obj({
  issuers: Type.Array(RefName, { minItems: 1, description: 'Names from identity.issuers; the token `iss` selects one' }),
  dpop: Type.Optional(Type.Union([Type.Literal('off'), Type.Literal('allowed'), Type.Literal('required')], {
    default: 'allowed',
    description: 'allowed: DPoP-bound tokens (cnf.jkt) must come with a valid proof, bearer tokens pass; required: only DPoP-bound tokens; off: DPoP scheme refused',
  })),
  hideCredentials: Type.Optional(Type.Boolean({ default: false, description: 'Remove the Authorization header from the request sent upstream' })),
});

export const IntrospectionMethodSchema = Obj({
  server: RefName,
  hideCredentials: Type.Optional(Type.Boolean({ default: false })),
});

export const AuthMethodSchema = Type.Union([
  Obj({ apiKey: ApiKeyMethodSchema }),
  Obj({ jwt: JwtMethodSchema }),
  Obj({ introspection: IntrospectionMethodSchema }),
]);

export const AuthenticationSchema = Obj({
  methods: Type.Array(AuthMethodSchema, { minItems: 1, description: 'Tried in order; see docs/identity.md' }),
  anonymous: Type.Optional(Type.Union([Type.Boolean(), Obj({ id: Type.String({ minLength: 1 }) })], {
    default: false,
    description: 'Let requests without any credential through (as this consumer id, default "anonymous"); invalid credentials are still refused',
  })),
  realm: Type.Optional(Type.String({ pattern: '^[^"\\\\]*$', description: 'realm in WWW-Authenticate challenges' })),
  forward: Type.Optional(Obj({
    consumer: Type.Optional(HeaderName),
    subject: Type.Optional(HeaderName),
    scopes: Type.Optional(HeaderName),
    roles: Type.Optional(HeaderName),
    method: Type.Optional(HeaderName),
    claims: Type.Optional(Type.Record(Type.String({ minLength: 1 }), HeaderName, { additionalProperties: false, description: 'claim (dot path) → header' })),
  }, { description: 'Verified identity sent upstream; client-sent copies of these headers are removed on every route' })),
});
export type AuthenticationConfig = Static<typeof AuthenticationSchema>;
export type ApiKeyMethodConfig = Static<typeof ApiKeyMethodSchema>;
export type JwtMethodConfig = Static<typeof JwtMethodSchema>;
export type IntrospectionMethodConfig = Static<typeof IntrospectionMethodSchema>;
