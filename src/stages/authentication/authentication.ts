// authentication stage: establishes who is calling (order 70, after client-cert and
// attestation, before authorization).
//
// Methods run in the configured order. A method whose credential is absent from the request is skipped;
// the first method that finds its credential decides: valid → ctx.identity, invalid → 401 (or 403 for a
// valid credential used from a place it may not be used, 503 when a verifier cannot be reached). There is
// no fall-through after an invalid credential, so a bad token is never masked by a later method and an
// attacker cannot probe methods one by one. No credential at all → 401 with a challenge per scheme,
// unless the route allows anonymous access.
//
// Every refusal is a security event (src/observability/security-events.ts). The problem code tells the
// client only the class of failure, and the detail is the method's client-safe description (RFC 6750
// style "the token expired"; one text for every bad API key state, so keys cannot be probed). The
// precise reason (api-key-revoked, jwt-bad-signature, ...) goes to the event, the access log's
// block_reason and the metrics.
import type { RouteConfig } from '../../config/schema.js';
import type { Identity, RequestContext } from '../../pipeline/context.js';
import type { CompiledStage, Rejection, StageModule, StageOutcome } from '../../pipeline/types.js';
import type { SecurityEventBus } from '../../observability/security-events.js';
import { wwwAuthenticate } from '../../identity/challenge.js';
import { claimAt } from '../../identity/claims.js';
import { DEFAULT_DPOP_ALGORITHMS } from '../../identity/dpop/dpop.js';
import { AuthenticationSchema, type AuthenticationConfig } from './schema.js';
import { authenticationIssues } from './semantic.js';
import type { AuthFailure, AuthMethod, AuthOutcome } from './types.js';
import { compileApiKeyMethod } from './api-key.js';
import { compileJwtMethod } from './jwt.js';
import { compileIntrospectionMethod } from './introspection.js';

const GENERIC_DETAIL: Readonly<Record<number, string>> = {
  401: 'the credentials are not valid',
  403: 'these credentials may not be used from here',
  503: 'the credentials cannot be verified right now; try again shortly',
};
const CODE: Readonly<Record<number, string>> = { 401: 'invalid-credentials', 403: 'credentials-not-allowed', 503: 'authentication-unavailable' };

/** A forwarded identity header: lower-case name and how its value is taken from the identity. */
interface ForwardRule { readonly name: string; readonly value: (id: Identity) => string | undefined }

export const authenticationStage: StageModule<'authentication', typeof AuthenticationSchema> = {
  name: 'authentication',
  order: 70,
  configKey: 'authentication',
  schema: AuthenticationSchema,
  upgrades: 'run',
  docs: 'docs/identity.md',
  check: authenticationIssues,
  ownedRequestHeaders: identityForwardHeaderNames,
  compile(cfg, env) {
    const ienv = env.identity;
    const methods: AuthMethod[] = cfg.methods.map((m, i) => {
      try {
        if ('apiKey' in m) return compileApiKeyMethod(m.apiKey, ienv);
        if ('jwt' in m) return compileJwtMethod(m.jwt, ienv);
        return compileIntrospectionMethod(m.introspection, ienv);
      } catch (err) {
        throw new Error(`authentication.methods[${i}]: ${(err as Error).message}`);
      }
    });
    return compileAuthentication(cfg, methods, env.routeId, ienv.events, ienv.config.dpop?.algorithms);
  },
};

/** The stage's handler over already compiled methods (unit tests pass fake ones). */
export function compileAuthentication(cfg: AuthenticationConfig, methods: readonly AuthMethod[], routeId: string, events: SecurityEventBus, dpopAlgorithms: readonly string[] = DEFAULT_DPOP_ALGORITHMS): CompiledStage {
  {
    const schemes = [...new Set(methods.flatMap((m) => m.challengeSchemes))];
    // RFC 9449 7.1: a DPoP challenge should say which proof algorithms are accepted.
    const algs = schemes.includes('DPoP') ? dpopAlgorithms.join(' ') : undefined;
    const realm = cfg.realm;
    const anonymous: Identity | undefined = cfg.anonymous === undefined || cfg.anonymous === false
      ? undefined
      : Object.freeze({ id: cfg.anonymous === true ? 'anonymous' : cfg.anonymous.id, kind: 'anonymous' });
    const forward = compileForward(cfg.forward);

    // Built once: the answer to a request without any credential (RFC 6750 3.1: no error code then).
    const missing: Rejection = Object.freeze({
      status: 401,
      code: 'authentication-required',
      detail: 'this resource requires authentication',
      headers: Object.freeze({ 'www-authenticate': wwwAuthenticate(schemes, realm, algs !== undefined ? { algs } : {}) }),
    });

    const refuse = (ctx: RequestContext, m: AuthMethod, f: AuthFailure): Rejection => {
      emit(events, ctx, routeId, m.kind, f.reason, f.consumer, f.credentialId);
      const headers: Record<string, string> = {};
      if (f.status === 401) {
        // The failing scheme (or, if the method cannot tell, its schemes) carries the error; the route's
        // other schemes are offered plainly.
        const params = { ...(f.error !== undefined ? { error: f.error } : {}), ...(f.description !== undefined ? { error_description: f.description } : {}), ...(algs !== undefined ? { algs } : {}) };
        // (RFC 6750 / RFC 9449: `invalid_dpop_proof` is a DPoP error, not a Bearer one)
        const failing = f.scheme !== undefined ? [f.scheme] : m.challengeSchemes;
        const own = wwwAuthenticate(failing, realm, params);
        const others = schemes.filter((s) => !failing.includes(s));
        headers['www-authenticate'] = others.length > 0 ? `${own}, ${wwwAuthenticate(others, realm, algs !== undefined ? { algs } : {})}` : own;
      } else if (f.status === 503) {
        headers['retry-after'] = '1';
      }
      return { status: f.status, code: CODE[f.status] ?? 'invalid-credentials', detail: f.description ?? GENERIC_DETAIL[f.status], headers, logReason: f.reason };
    };

    const accept = (ctx: RequestContext, m: AuthMethod, identity: Identity): undefined => {
      ctx.identity = identity;
      m.hideCredentials?.(ctx);
      if (forward.length > 0 && ctx.plan !== undefined) {
        for (const rule of forward) {
          const v = rule.value(identity);
          if (v !== undefined) ctx.plan.fwd.push(rule.name, v);
        }
      }
      return undefined;
    };

    const settle = (ctx: RequestContext, m: AuthMethod, o: AuthOutcome): StageOutcome => (o.ok ? accept(ctx, m, o.identity) : refuse(ctx, m, o));

    return {
      onRequest(ctx) {
        for (let i = 0; i < methods.length; i++) {
          const m = methods[i]!;
          const out = m.authenticate(ctx);
          if (out === undefined) continue;
          if (out instanceof Promise) return out.then((o) => settle(ctx, m, o));
          return settle(ctx, m, out);
        }
        if (anonymous !== undefined) {
          ctx.identity = anonymous;
          return undefined;
        }
        emit(events, ctx, routeId, undefined, 'credentials-missing', undefined, undefined);
        return missing;
      },
    };
  }
}

function emit(events: SecurityEventBus, ctx: RequestContext, route: string, method: string | undefined, reason: string, consumer: string | undefined, credentialId: string | undefined): void {
  events.emit({
    type: 'authentication',
    reason,
    route,
    clientIp: ctx.clientIp,
    requestId: ctx.id,
    ...(consumer !== undefined ? { consumer } : {}),
    ...(method !== undefined ? { method } : {}),
    ...(credentialId !== undefined ? { credentialId } : {}),
    time: Date.now(),
  });
}

// Header values must stay single-line visible text: a claim is data from a token issuer, and a newline or
// control byte in it would make the upstream request invalid (undici refuses it) or worse.
const UNSAFE_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
const MAX_VALUE = 4096;

function safeValue(v: string): string | undefined {
  return v.length <= MAX_VALUE && !UNSAFE_VALUE.test(v) ? v : undefined;
}

function claimValue(v: unknown): string | undefined {
  if (typeof v === 'string') return safeValue(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return v.every((x) => typeof x === 'string' || typeof x === 'number') ? safeValue(v.join(',')) : undefined;
  if (v !== null && typeof v === 'object') return safeValue(JSON.stringify(v));
  return undefined;
}


function compileForward(f: AuthenticationConfig['forward']): ForwardRule[] {
  if (f === undefined) return [];
  const out: ForwardRule[] = [];
  const add = (name: string | undefined, value: ForwardRule['value']) => { if (name !== undefined) out.push({ name: name.toLowerCase(), value }); };
  add(f.consumer, (id) => (id.consumer !== undefined ? safeValue(id.consumer) : undefined));
  add(f.subject, (id) => (id.subject !== undefined ? safeValue(id.subject) : undefined));
  add(f.scopes, (id) => (id.scopes !== undefined && id.scopes.length > 0 ? safeValue(id.scopes.join(' ')) : undefined));
  add(f.roles, (id) => (id.roles !== undefined && id.roles.length > 0 ? safeValue(id.roles.join(',')) : undefined));
  add(f.method, (id) => id.kind);
  for (const [claim, header] of Object.entries(f.claims ?? {})) {
    const segments = claim.split('.');
    add(header, (id) => claimValue(claimAt(id.claims, claim, segments)));
  }
  return out;
}

/**
 * Every identity header any route forwards (lower case). The request handler strips client-sent copies
 * of these on every route, so no client can pose as a verified consumer to a backend that trusts them.
 */
export function identityForwardHeaderNames(routes: readonly RouteConfig[]): string[] {
  const out: string[] = [];
  for (const r of routes) {
    const f = r.authentication?.forward;
    if (f === undefined) continue;
    for (const h of [f.consumer, f.subject, f.scopes, f.roles, f.method, ...Object.values(f.claims ?? {})]) {
      if (h !== undefined) out.push(h.toLowerCase());
    }
  }
  return out;
}
