// The `introspection` authentication method: an opaque access token in `Authorization: Bearer <token>`,
// checked with the configured RFC 7662 introspection server (src/identity/introspection/client.ts). Cache
// hits answer synchronously; a timeout or an unreachable server fails closed (503). Like the jwt method,
// a token in the `access_token` query parameter is refused with invalid_request.
import type { IdentityEnv } from '../../identity/env.js';
import { removeHeaderPairs } from '../../pipeline/header-list.js';
import { introspector, type IntrospectorOptions } from '../../identity/introspection/client.js';
import { authorizationScheme, hasAccessTokenParam, tokenAfterScheme, MALFORMED_AUTHORIZATION, TOKEN_IN_QUERY } from './jwt.js';
import type { IntrospectionMethodConfig } from './schema.js';
import type { AuthMethod } from './types.js';

const AUTHORIZATION: ReadonlySet<string> = new Set(['authorization']);

export function compileIntrospectionMethod(cfg: IntrospectionMethodConfig, env: IdentityEnv, opts: IntrospectorOptions = {}): AuthMethod {
  const server = introspector(cfg.server, env, opts);
  return {
    kind: 'introspection',
    challengeSchemes: ['Bearer'],

    authenticate(ctx) {
      const h = ctx.req.headers.authorization;
      // only Bearer is ours (DPoP-bound tokens are JWT-method business)
      if (h === undefined || authorizationScheme(h) !== 1) return hasAccessTokenParam(ctx.query) ? TOKEN_IN_QUERY : undefined;
      if (hasAccessTokenParam(ctx.query)) return TOKEN_IN_QUERY;
      const token = tokenAfterScheme(h, 6);
      if (token === undefined) return MALFORMED_AUTHORIZATION;
      return server.introspect(token);
    },

    hideCredentials(ctx) {
      if (cfg.hideCredentials === true && ctx.plan !== undefined) removeHeaderPairs(ctx.plan.fwd, AUTHORIZATION);
    },
  };
}
