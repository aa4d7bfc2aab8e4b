// The contract between the authentication stage and its methods (api-key, jwt, introspection).
import type { RequestContext } from '../../pipeline/context.js';

// AuthFailure and AuthOutcome are owned by src/identity (the verifiers return them); re-exported here.
export type { AuthFailure, AuthFailureError, AuthOutcome } from '../../identity/failure.js';
import type { AuthOutcome } from '../../identity/failure.js';

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
