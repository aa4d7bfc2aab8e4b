// What a credential verifier answers: an identity, or a failure the authentication stage turns into a
// 401/403/503 with a challenge. Owned by src/identity (JWT verification and the introspection client
// build these); src/stages/authentication/types.ts re-exports them for the stage and its methods.
import type { Identity } from './identity.js';

export type AuthFailureError = 'invalid_request' | 'invalid_token' | 'invalid_dpop_proof';

export interface AuthFailure {
  readonly ok: false;
  /** 401: bad or unusable credential; 403: valid credential not allowed here (wrong IP/Origin); 503: verifier unreachable (fail closed) */
  readonly status: 401 | 403 | 503;
  /** machine-readable reason for the security event and the access log, e.g. 'token-expired' */
  readonly reason: string;
  /** RFC 6750 / RFC 9449 error code for the challenge */
  readonly error?: AuthFailureError;
  /** safe to show the client (no internals, no credential) */
  readonly description?: string;
  /** consumer, when the credential identified one (a valid key from a wrong IP) */
  readonly consumer?: string;
  /** key id or issuer name, never the credential */
  readonly credentialId?: string;
  /** the auth-scheme the client used (e.g. 'DPoP'), when the method answers with several: only it carries the error */
  readonly scheme?: string;
}

export type AuthOutcome = { readonly ok: true; readonly identity: Identity } | AuthFailure;
