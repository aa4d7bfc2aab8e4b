// authorization stage: what an established identity may do on this route (order 80,
// right after authentication). See docs/authorization.md.
//
// The route-level policy applies to every method; a `methods.<METHOD>` entry replaces it for that method
// (HEAD without its own entry follows GET's). Everything is compiled once into plain data: sets for role
// and scope lookups, pre-split claim paths, and frozen Rejection objects (headers included) for every
// answer the policy can give, so a request costs a map lookup and a few set probes.
//
// Decision order (first failure answers):
//   1. no identity, or an anonymous one while the policy requires anything → 401 authentication-required
//      with a challenge per scheme the route accepts (403 when the route has no challenge scheme, e.g.
//      client certificates only: a 401 must carry a challenge, RFC 9110 15.5.2)
//   2. roles   → 403 insufficient-role
//   3. scopes  → 403 insufficient-scope, `Bearer error="insufficient_scope", scope="..."` (RFC 6750 3.1)
//   4. claims  → 403 claim-not-allowed
//   5. mfa     → 401 insufficient-user-authentication, RFC 9470 step-up challenge (acr_values, max_age)
// Challenges after authentication go to the scheme the identity used: DPoP for a DPoP-bound token
// (claims.cnf.jkt; RFC 9449 7.1 puts the error on the scheme that was used), Bearer for other tokens, none
// for API keys and client certificates. Every refusal is a security event of type 'authorization'.
import { claimAt, scopesOf as claimScopes } from '../../identity/claims.js';
import { jwtChallengeSchemes } from '../authentication/jwt.js';
import { DEFAULT_DPOP_ALGORITHMS } from '../../identity/dpop/dpop.js';
import type { AuthenticationConfig } from '../authentication/schema.js';
import type { Identity, RequestContext } from '../../pipeline/context.js';
import type { CompileEnv, Rejection, StageModule } from '../../pipeline/types.js';
import type { SecurityEventBus } from '../../observability/security-events.js';
import { wwwAuthenticate, type ChallengeParams } from '../../identity/challenge.js';
import { AuthorizationSchema, type AccessPolicyConfig, type AuthorizationConfig } from './schema.js';
import { authorizationIssues } from './semantic.js';

type Claims = Readonly<Record<string, unknown>>;

/** Identity kinds that carry token claims (amr, acr, auth_time, cnf) and answer with Bearer/DPoP challenges. */
const TOKEN_KINDS: ReadonlySet<string> = new Set(['jwt', 'introspection']);

/** Proof algorithms advertised in DPoP challenges when identity.dpop.algorithms is not set (its documented default). */

// ---------------------------------------------------------------- challenge schemes

/** auth-schemes a route's authentication methods accept, in method order, without duplicates. */
export function routeChallengeSchemes(auth: AuthenticationConfig | undefined): string[] {
  const out = new Set<string>();
  for (const m of auth?.methods ?? []) {
    if ('apiKey' in m) out.add('ApiKey');
    else if ('jwt' in m) for (const s of jwtChallengeSchemes(m.jwt.dpop ?? 'allowed')) out.add(s);
    else out.add('Bearer');
  }
  return [...out];
}

// ---------------------------------------------------------------- claims

/** Is `token` one of the space-separated tokens of `list` (the `scope` claim format)? No allocation. */
export function hasSpaceToken(list: string, token: string): boolean {
  if (token === '') return false;
  let from = 0;
  for (;;) {
    const i = list.indexOf(token, from);
    if (i < 0) return false;
    const end = i + token.length;
    if ((i === 0 || list.charCodeAt(i - 1) === 32) && (end === list.length || list.charCodeAt(end) === 32)) return true;
    from = i + 1;
  }
}

type ClaimCheck = (claims: Claims | undefined) => boolean;

function compileClaimCheck(c: NonNullable<AccessPolicyConfig['claims']>[number]): ClaimCheck {
  const full = c.claim;
  const segs = full.split('.');
  if ('equals' in c) {
    const want = c.equals;
    return (claims) => claimAt(claims, full, segs) === want;
  }
  if ('oneOf' in c) {
    const allowed = new Set<unknown>(c.oneOf);
    return (claims) => {
      const v = claimAt(claims, full, segs);
      return (typeof v === 'string' || typeof v === 'number') && allowed.has(v);
    };
  }
  const want = c.contains;
  return (claims) => {
    const v = claimAt(claims, full, segs);
    if (Array.isArray(v)) return v.includes(want);
    return typeof v === 'string' && typeof want === 'string' && hasSpaceToken(v, want);
  };
}

// ---------------------------------------------------------------- roles and scopes

interface Requirement {
  readonly all: boolean;
  readonly names: readonly string[];
  readonly set: ReadonlySet<string>;
}

function requirement(r: { anyOf: string[] } | { allOf: string[] } | undefined): Requirement | undefined {
  if (r === undefined) return undefined;
  const all = 'allOf' in r;
  const names = [...new Set('allOf' in r ? r.allOf : r.anyOf)];
  return { all, names, set: new Set(names) };
}

function satisfies(req: Requirement, have: readonly string[] | undefined): boolean {
  if (have === undefined) return false;
  if (req.all) {
    for (const n of req.names) if (!have.includes(n)) return false;
    return true;
  }
  for (const h of have) if (req.set.has(h)) return true;
  return false;
}

/** The identity's scopes; from its claims (`scope`, else `scp`: src/identity/claims.ts) when a method left them unset. */
function scopesOf(id: Identity): readonly string[] | undefined {
  if (id.scopes !== undefined) return id.scopes;
  return id.claims === undefined ? undefined : claimScopes(id.claims);
}

// ---------------------------------------------------------------- MFA

interface MfaCheck {
  readonly amr: ReadonlySet<string> | undefined;
  readonly acr: ReadonlySet<string> | undefined;
  readonly maxAgeSec: number | undefined;
}

/** 0: satisfied, 1: no accepted factor (amr/acr), 2: factor ok but auth_time missing or too old. */
function mfaVerdict(m: MfaCheck, id: Identity, nowSec: number): 0 | 1 | 2 {
  const c = id.claims;
  if (!TOKEN_KINDS.has(id.kind) || c === undefined) return 1;
  let factor = false;
  if (m.amr !== undefined && Array.isArray(c.amr)) {
    for (const x of c.amr) if (typeof x === 'string' && m.amr.has(x)) { factor = true; break; }
  }
  if (!factor && m.acr !== undefined && typeof c.acr === 'string' && m.acr.has(c.acr)) factor = true;
  if (!factor) return 1;
  if (m.maxAgeSec === undefined) return 0;
  const t = c.auth_time;
  return typeof t === 'number' && Number.isFinite(t) && nowSec - t <= m.maxAgeSec ? 0 : 2;
}

// ---------------------------------------------------------------- compiled policy

/** One answer in the variants a challenge needs: for Bearer tokens, DPoP-bound tokens, and other identities. */
interface Answer {
  readonly bearer: Rejection;
  readonly dpop: Rejection;
  readonly other: Rejection;
}

export interface CompiledAccessPolicy {
  /** requires nothing: everyone passes, anonymous included */
  readonly open: boolean;
  readonly roles: Requirement | undefined;
  readonly scopes: Requirement | undefined;
  readonly claims: readonly ClaimCheck[] | undefined;
  readonly mfa: MfaCheck | undefined;
  readonly unauthenticated: Rejection;
  readonly insufficientRole: Rejection;
  readonly insufficientScope: Answer | undefined;
  readonly claimNotAllowed: Rejection;
  readonly stepUpFactor: Answer | undefined;
  readonly stepUpAge: Answer | undefined;
}

/** Route-wide inputs of the challenges. */
interface ChallengeEnv {
  readonly realm: string | undefined;
  readonly schemes: readonly string[];
  /** schemes a token (not an API key) answers: where a step-up can be sent to a non-token identity */
  readonly tokenSchemes: readonly string[];
  readonly algs: string;
}

function rejection(status: number, code: string, detail: string, challenge?: string): Rejection {
  return Object.freeze({ status, code, detail, ...(challenge !== undefined ? { headers: Object.freeze({ 'www-authenticate': challenge }) } : {}) });
}

function challengeEnv(env: CompileEnv): ChallengeEnv {
  const schemes = routeChallengeSchemes(env.route.authentication);
  return {
    realm: env.route.authentication?.realm,
    schemes,
    tokenSchemes: schemes.filter((s) => s !== 'ApiKey'),
    algs: (env.identity.config.dpop?.algorithms ?? DEFAULT_DPOP_ALGORITHMS).join(' '),
  };
}

function scopeDetail(r: Requirement): string {
  if (r.names.length === 1) return `this operation requires scope ${r.names[0]!}`;
  return r.all ? `this operation requires the scopes ${r.names.join(', ')}` : `this operation requires one of the scopes ${r.names.join(', ')}`;
}

function compilePolicy(cfg: AccessPolicyConfig, ce: ChallengeEnv, where: string): CompiledAccessPolicy {
  const roles = requirement(cfg.roles);
  const scopes = requirement(cfg.scopes);
  const claims = cfg.claims?.map(compileClaimCheck);
  let mfa: MfaCheck | undefined;
  if (cfg.mfa !== undefined) {
    const { amr, acr, maxAgeSec } = cfg.mfa;
    if (amr === undefined && acr === undefined) throw new Error(`${where}mfa: set amr or acr (what counts as multi-factor authentication)`);
    mfa = { amr: amr && new Set(amr), acr: acr && new Set(acr), maxAgeSec };
  }
  const open = roles === undefined && scopes === undefined && claims === undefined && mfa === undefined;

  const unauthenticated = ce.schemes.length > 0
    ? rejection(401, 'authentication-required', 'this resource requires authentication', wwwAuthenticate(ce.schemes, ce.realm, { algs: ce.algs }))
    : rejection(403, 'authentication-required', 'this resource requires an authenticated client');

  let insufficientScope: Answer | undefined;
  if (scopes !== undefined) {
    const detail = scopeDetail(scopes);
    const params: ChallengeParams = { error: 'insufficient_scope', scope: scopes.names.join(' '), algs: ce.algs };
    insufficientScope = {
      bearer: rejection(403, 'insufficient-scope', detail, wwwAuthenticate(['Bearer'], ce.realm, params)),
      dpop: rejection(403, 'insufficient-scope', detail, wwwAuthenticate(['DPoP'], ce.realm, params)),
      other: rejection(403, 'insufficient-scope', detail),
    };
  }

  let stepUpFactor: Answer | undefined;
  let stepUpAge: Answer | undefined;
  if (mfa !== undefined) {
    const stepUp = (need: string): Answer => {
      const params: ChallengeParams = {
        error: 'insufficient_user_authentication',
        error_description: `${need} is required`,
        ...(cfg.mfa?.acr !== undefined ? { acr_values: cfg.mfa.acr.join(' ') } : {}),
        ...(mfa.maxAgeSec !== undefined ? { max_age: mfa.maxAgeSec } : {}),
        algs: ce.algs,
      };
      const detail = `this operation requires ${need}`;
      return {
        bearer: rejection(401, 'insufficient-user-authentication', detail, wwwAuthenticate(['Bearer'], ce.realm, params)),
        dpop: rejection(401, 'insufficient-user-authentication', detail, wwwAuthenticate(['DPoP'], ce.realm, params)),
        // An API key or client certificate cannot show MFA: point the client at the route's token schemes,
        // or refuse outright when the route has none (a 401 must carry a challenge).
        other: ce.tokenSchemes.length > 0
          ? rejection(401, 'insufficient-user-authentication', 'this operation requires a token showing multi-factor authentication', wwwAuthenticate(ce.tokenSchemes, ce.realm, params))
          : rejection(403, 'insufficient-user-authentication', 'this operation requires a token showing multi-factor authentication'),
      };
    };
    stepUpFactor = stepUp('multi-factor authentication');
    stepUpAge = mfa.maxAgeSec !== undefined ? stepUp('a more recent authentication') : undefined;
  }

  return {
    open,
    roles,
    scopes,
    claims,
    mfa,
    unauthenticated,
    insufficientRole: rejection(403, 'insufficient-role', 'the caller lacks a role this operation requires'),
    insufficientScope,
    claimNotAllowed: rejection(403, 'claim-not-allowed', 'the caller is not allowed to perform this operation'),
    stepUpFactor,
    stepUpAge,
  };
}

function variant(a: Answer, id: Identity): Rejection {
  if (!TOKEN_KINDS.has(id.kind)) return a.other;
  const cnf = id.claims?.cnf;
  return cnf !== null && typeof cnf === 'object' && typeof (cnf as Record<string, unknown>).jkt === 'string' ? a.dpop : a.bearer;
}

/** The policy's answer for this identity: undefined = allowed. Pure (unit-testable without a request). */
export function decide(p: CompiledAccessPolicy, id: Identity | undefined, nowMs: number): Rejection | undefined {
  if (p.open) return undefined;
  if (id === undefined || id.kind === 'anonymous') return p.unauthenticated;
  if (p.roles !== undefined && !satisfies(p.roles, id.roles)) return p.insufficientRole;
  if (p.insufficientScope !== undefined && !satisfies(p.scopes!, scopesOf(id))) return variant(p.insufficientScope, id);
  if (p.claims !== undefined) {
    for (const check of p.claims) if (!check(id.claims)) return p.claimNotAllowed;
  }
  if (p.mfa !== undefined) {
    const v = mfaVerdict(p.mfa, id, nowMs / 1000);
    if (v === 1) return variant(p.stepUpFactor!, id);
    if (v === 2) return variant(p.stepUpAge!, id);
  }
  return undefined;
}

/** The route-level policy and the per-method ones (HEAD follows GET unless it has its own). */
export function compileAuthorization(cfg: AuthorizationConfig, env: CompileEnv): { base: CompiledAccessPolicy; byMethod: ReadonlyMap<string, CompiledAccessPolicy> | undefined } {
  const ce = challengeEnv(env);
  const { methods, ...routeLevel } = cfg;
  const base = compilePolicy(routeLevel, ce, 'authorization.');
  let byMethod: Map<string, CompiledAccessPolicy> | undefined;
  if (methods !== undefined) {
    byMethod = new Map();
    for (const [m, pc] of Object.entries(methods)) byMethod.set(m, compilePolicy(pc, ce, `authorization.methods.${m}.`));
    const get = byMethod.get('GET');
    if (get !== undefined && !byMethod.has('HEAD')) byMethod.set('HEAD', get);
    if (byMethod.size === 0) byMethod = undefined;
  }
  return { base, byMethod };
}

function emit(events: SecurityEventBus, routeId: string, ctx: RequestContext, id: Identity | undefined, reason: string): void {
  const credentialId = id?.keyId ?? id?.issuer;
  events.emit({
    type: 'authorization',
    reason,
    route: routeId,
    clientIp: ctx.clientIp,
    requestId: ctx.id,
    ...(id?.consumer !== undefined ? { consumer: id.consumer } : {}),
    ...(id !== undefined ? { method: id.kind } : {}),
    ...(credentialId !== undefined ? { credentialId } : {}),
    time: Date.now(),
  });
}

export const authorizationStage: StageModule<'authorization', typeof AuthorizationSchema> = {
  name: 'authorization',
  order: 80,
  configKey: 'authorization',
  schema: AuthorizationSchema,
  upgrades: 'run',
  docs: 'docs/authorization.md',
  check: authorizationIssues,
  compile(cfg, env) {
    const { base, byMethod } = compileAuthorization(cfg, env);
    if (base.open && (byMethod === undefined || [...byMethod.values()].every((p) => p.open))) return null;
    const events = env.identity.events;
    const routeId = env.routeId;
    return {
      onRequest(ctx) {
        const p = byMethod === undefined ? base : (byMethod.get(ctx.req.method ?? '') ?? base);
        if (p.open) return undefined;
        const id = ctx.identity;
        const r = decide(p, id, p.mfa?.maxAgeSec !== undefined ? Date.now() : 0);
        if (r !== undefined) emit(events, routeId, ctx, id, r.code);
        return r;
      },
    };
  },
};
