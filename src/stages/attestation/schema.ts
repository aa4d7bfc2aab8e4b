// Route `attestation:` block: a short-lived app attestation token (Approov style) proving the request
// comes from a genuine app instance.
import { Type, type Static } from '@sinclair/typebox';
import { Obj, HeaderName, RefName } from '../../config/schema-kit.js';

/** Default header carrying the token (Approov apps send `Approov-Token`: set `header: Approov-Token`). */
export { DEFAULT_ATTESTATION_HEADER } from '../../config/credentials.js';

export const AttestationSchema = Obj({
  verifier: RefName,
  header: Type.Optional(HeaderName),
  required: Type.Optional(Type.Boolean({ default: true, description: 'false: a missing token is let through (monitor mode); an invalid one is still refused' })),
  bindingClaim: Type.Optional(Type.String({ minLength: 1, description: 'Claim holding base64url(SHA-256(Authorization header value)); must match the request' })),
  oneTimeUse: Type.Optional(Type.Boolean({ default: false, description: 'true: each token is accepted once (recorded in the shared state store until it expires); a replay is refused. Costs one state-store round trip per request' })),
});
export type AttestationConfig = Static<typeof AttestationSchema>;
