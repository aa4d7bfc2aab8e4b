// The `jwt` authentication method: a JWT access token in `Authorization: Bearer <token>` or, for
// DPoP-bound tokens (RFC 9449), `Authorization: DPoP <token>` with a `DPoP` proof header. Tokens are only
// read from the Authorization header: an `access_token` query parameter (RFC 6750 2.3) is refused with
// invalid_request, because URLs end up in logs, browser history and Referer headers.
//
// Verification (issuer by `iss`, keys, algorithms, claims, cache): src/identity/jwt/verify.ts. A token
// verified before is answered synchronously from the cache. DPoP binding, per request (proofs are
// single-use, so this part is never cached):
//   token has cnf.jkt, scheme DPoP   → the proof must verify (src/identity/dpop/dpop.ts)
//   token has cnf.jkt, scheme Bearer → refused: a stolen bound token must not work as a bearer token
//   no cnf.jkt, scheme DPoP          → refused (the client claims a binding the token does not have)
//   no cnf.jkt, dpop: required       → refused
//   scheme DPoP, dpop: off           → refused
import type { RequestContext } from '../../pipeline/context.js';
import type { IdentityEnv } from '../../identity/env.js';
import { removeHeaderPairs } from '../../pipeline/header-list.js';
import { issuerVerifier, JwtVerifier, type JwtResult, type VerifierOptions } from '../../identity/jwt/verify.js';
import { createDpopVerifier, dpopProofHeader, requestHtu, type DpopResult, type DpopVerifier } from '../../identity/dpop/dpop.js';
import type { JwtMethodConfig } from './schema.js';
import type { AuthFailure, AuthFailureError, AuthMethod, AuthOutcome } from './types.js';

const failure = (reason: string, error: AuthFailureError, description: string, status: 401 | 503 = 401): AuthFailure =>
  Object.freeze({ ok: false as const, status, reason, error, description });

/** Shared with the introspection method: the same request mistakes, the same answers. */
export const TOKEN_IN_QUERY = failure('token-in-query-not-allowed', 'invalid_request', 'send the access token in the Authorization header, not in the URL');
export const MALFORMED_AUTHORIZATION = failure('malformed-authorization', 'invalid_request', 'the Authorization header is malformed');
const BOUND_AS_BEARER = failure('dpop-token-as-bearer', 'invalid_token', 'this token is DPoP-bound: use the DPoP scheme with a proof');
const NOT_BOUND = failure('dpop-token-not-bound', 'invalid_token', 'this token is not DPoP-bound: use the Bearer scheme');
const DPOP_REQUIRED = failure('dpop-required', 'invalid_token', 'a DPoP-bound token is required');
const DPOP_OFF = failure('dpop-not-accepted', 'invalid_request', 'the DPoP scheme is not accepted here');

const BEARER = 1;
const DPOP = 2;

/** 1 for `Bearer <x>`, 2 for `DPoP <x>` (case-insensitive scheme, RFC 9110 11.1), 0 otherwise. No allocation. */
export function authorizationScheme(v: string): 0 | 1 | 2 {
  const sp = v.indexOf(' ');
  if (sp === 6 && matchesLower(v, 'bearer')) return BEARER;
  if (sp === 4 && matchesLower(v, 'dpop')) return DPOP;
  return 0;
}

function matchesLower(v: string, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) if ((v.charCodeAt(i) | 0x20) !== lower.charCodeAt(i)) return false;
  return true;
}

/**
 * The token after the scheme (leading spaces skipped), or undefined when it is empty or has more words.
 * Only this cheap check runs per request: the full syntax check (RFC 6750 b64token, JWS compact form)
 * runs on cache misses, since a cached token passed it already.
 */
export function tokenAfterScheme(v: string, schemeLength: number): string | undefined {
  let i = schemeLength + 1;
  while (v.charCodeAt(i) === 32) i++;
  if (i >= v.length || v.indexOf(' ', i) !== -1) return undefined;
  return v.slice(i);
}

/** Does the raw query string carry `access_token` (percent-decoded name)? Cheap when it cannot. */
export function hasAccessTokenParam(query: string): boolean {
  if (query === '' || (query.indexOf('access') === -1 && query.indexOf('%') === -1)) return false;
  for (const part of query.split('&')) {
    const eq = part.indexOf('=');
    let name = eq === -1 ? part : part.slice(0, eq);
    if (name.indexOf('%') !== -1 || name.indexOf('+') !== -1) {
      try { name = decodeURIComponent(name.replace(/\+/g, ' ')); } catch { continue; }
    }
    if (name === 'access_token') return true;
  }
  return false;
}

const CREDENTIAL_HEADERS: ReadonlySet<string> = new Set(['authorization', 'dpop']);

/** A failure names the scheme the client used, so only that scheme's challenge carries the error. */
const tagScheme = (name: string) => (x: AuthOutcome): AuthOutcome => (x.ok ? x : { ...x, scheme: name });
const TAG_BEARER = tagScheme('Bearer');
const TAG_DPOP = tagScheme('DPoP');

/** The auth-schemes a jwt method answers with (also what authorization challenges name). */
export function jwtChallengeSchemes(dpop: 'off' | 'allowed' | 'required'): readonly string[] {
  return dpop === 'off' ? ['Bearer'] : dpop === 'required' ? ['DPoP'] : ['DPoP', 'Bearer'];
}

export function compileJwtMethod(cfg: JwtMethodConfig, env: IdentityEnv, opts: VerifierOptions = {}): AuthMethod {
  const now = opts.now ?? Date.now;
  const verifier = new JwtVerifier(cfg.issuers.map((name) => issuerVerifier(name, env, opts)), now);
  const mode = cfg.dpop ?? 'allowed';
  const dpop: DpopVerifier | undefined = mode === 'off' ? undefined : createDpopVerifier(env.config.dpop, env.state);

  const proofFailure = (r: Extract<DpopResult, { ok: false }>, consumer: string | undefined): AuthFailure => Object.freeze({
    ok: false as const,
    // the replay store could not answer: fail closed, but as "try again", not "your proof is bad"
    status: r.reason === 'dpop-replay-check-unavailable' ? 503 : 401,
    reason: r.reason,
    error: 'invalid_dpop_proof' as const,
    description: r.description,
    ...(consumer !== undefined ? { consumer } : {}),
  });

  /** DPoP binding rules on a verified token (see the header comment). */
  const bind = (ctx: RequestContext, scheme: number, token: string, r: JwtResult): AuthOutcome | Promise<AuthOutcome> => {
    if (!r.ok) return r;
    if (r.jkt === undefined) {
      if (scheme === DPOP) return NOT_BOUND;
      return mode === 'required' ? DPOP_REQUIRED : r;
    }
    if (scheme === BEARER) return BOUND_AS_BEARER;
    return dpop!.verify({ proof: dpopProofHeader(ctx), method: ctx.req.method ?? 'GET', htu: requestHtu(ctx), accessToken: token, jkt: r.jkt }, now())
      .then((p) => (p.ok ? r : proofFailure(p, r.identity.consumer)));
  };

  return {
    kind: 'jwt',
    challengeSchemes: jwtChallengeSchemes(mode),

    authenticate(ctx) {
      const h = ctx.req.headers.authorization;
      const scheme = h === undefined ? 0 : authorizationScheme(h);
      if (scheme === 0) return hasAccessTokenParam(ctx.query) ? TOKEN_IN_QUERY : undefined;
      if (hasAccessTokenParam(ctx.query)) return TOKEN_IN_QUERY;
      if (scheme === DPOP && dpop === undefined) return DPOP_OFF;
      const token = tokenAfterScheme(h!, scheme === BEARER ? 6 : 4);
      if (token === undefined) return MALFORMED_AUTHORIZATION;
      const tag = scheme === DPOP ? TAG_DPOP : TAG_BEARER;
      const r = verifier.verify(token);
      const out = r instanceof Promise ? r.then((v) => bind(ctx, scheme, token, v)) : bind(ctx, scheme, token, r);
      return out instanceof Promise ? out.then(tag) : out.ok ? out : tag(out);
    },

    hideCredentials(ctx) {
      if (cfg.hideCredentials === true && ctx.plan !== undefined) removeHeaderPairs(ctx.plan.fwd, CREDENTIAL_HEADERS);
    },
  };
}
