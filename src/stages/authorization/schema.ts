// Route `authorization:` block: what an authenticated identity must have. A per-method entry replaces
// the route-level policy for that HTTP method.
import { Type, type Static } from '@sinclair/typebox';
import { Obj } from '../../config/schema-kit.js';

const Names = Type.Array(Type.String({ minLength: 1 }), { minItems: 1 });
const Requirement = Type.Union([Obj({ anyOf: Names }), Obj({ allOf: Names })]);

export const ClaimConditionSchema = Type.Union([
  Obj({ claim: Type.String({ minLength: 1, description: 'dot path' }), equals: Type.Union([Type.String(), Type.Number(), Type.Boolean()]) }),
  Obj({ claim: Type.String({ minLength: 1 }), oneOf: Type.Array(Type.Union([Type.String(), Type.Number()]), { minItems: 1 }) }),
  Obj({ claim: Type.String({ minLength: 1 }), contains: Type.Union([Type.String(), Type.Number()]) }),
]);

export const MfaPolicySchema = Obj({
  amr: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'One of these must be in the token `amr` (e.g. mfa, otp, hwk, swk)' })),
  acr: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'Accepted `acr` values; sent as acr_values in the step-up challenge' })),
  maxAgeSec: Type.Optional(Type.Integer({ minimum: 0, description: 'auth_time no older than this (sent as max_age)' })),
}, { description: 'Step-up authentication (RFC 9470): amr OR acr must satisfy the policy' });

export const AccessPolicySchema = Obj({
  roles: Type.Optional(Requirement),
  scopes: Type.Optional(Requirement),
  claims: Type.Optional(Type.Array(ClaimConditionSchema, { minItems: 1, description: 'All must hold' })),
  mfa: Type.Optional(MfaPolicySchema),
});

export const AuthorizationSchema = Obj({
  ...AccessPolicySchema.properties,
  methods: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Z]+$' }), AccessPolicySchema, { additionalProperties: false, description: 'Per HTTP method; replaces the route-level policy for that method' })),
});
export type AuthorizationConfig = Static<typeof AuthorizationSchema>;
export type AccessPolicyConfig = Static<typeof AccessPolicySchema>;
