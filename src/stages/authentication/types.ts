// The contract between the authentication stage and its methods (api-key, jwt, introspection).
import type { Identity, RequestContext } from '../../pipeline/context.js';

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

export interface AuthMethod {
  /** 'api-key' | 'jwt' | 'introspection' */
  readonly kind: string;
  /** auth-schemes this method answers challenges with (e.g. ['Bearer'], ['DPoP', 'Bearer'], ['ApiKey']) */
  readonly challengeSchemes: readonly string[];
  /**
   * undefined: the request carries no credential for this method (the stage tries the next one).
   * Otherwise the verdict. May return a promise only when it must wait (a JWKS fetch, an introspection
   * call, a DPoP replay check); cache hits stay synchronous.
   */
  authenticate(ctx: RequestContext): AuthOutcome | Promise<AuthOutcome> | undefined;
  /** Called after success: strip the credential from the upstream request when hideCredentials is on. */
  hideCredentials?(ctx: RequestContext): void;
}
