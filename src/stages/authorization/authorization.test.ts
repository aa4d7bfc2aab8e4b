import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { testCompileEnv } from '../../../test/helpers/compile-env.js';
import type { GatewayConfig, RouteConfig } from '../../config/schema.js';
import type { IdentityConfig } from '../../identity/schema.js';
import { RequestContext, type Identity } from '../../pipeline/context.js';
import type { CompiledStage, Rejection } from '../../pipeline/types.js';
import { SecurityEventBus, type SecurityEvent } from '../../observability/security-events.js';
import { authorizationStage, hasSpaceToken, routeChallengeSchemes } from './authorization.js';
import { claimAt } from '../../identity/claims.js';
import { authorizationIssues } from './semantic.js';
import type { AuthorizationConfig } from './schema.js';

const JWT_ROUTE: Partial<RouteConfig> = { authentication: { methods: [{ jwt: { issuers: ['idp'] } }], realm: 'api' } };

function stage(cfg: AuthorizationConfig, opts: { route?: Partial<RouteConfig>; events?: SecurityEventBus; identity?: IdentityConfig } = {}): CompiledStage {
  const route = { ...(opts.route ?? JWT_ROUTE), authorization: cfg };
  const s = authorizationStage.compile(cfg, testCompileEnv({ route, ...(opts.events ? { events: opts.events } : {}), ...(opts.identity ? { identity: opts.identity } : {}) }));
  assert.ok(s !== null);
  return s;
}

function ctxWith(identity: Identity | undefined, method = 'GET'): RequestContext {
  const req = { method, socket: {}, rawHeaders: [], headers: {} } as unknown as IncomingMessage;
  const ctx = new RequestContext(req, {} as ServerResponse, 'main', false, 0);
  ctx.id = 'req-1';
  ctx.clientIp = '192.0.2.7';
  ctx.routeId = 'r';
  ctx.identity = identity;
  return ctx;
}

function run(s: CompiledStage, identity: Identity | undefined, method = 'GET'): Rejection | undefined {
  const out = s.onRequest!(ctxWith(identity, method));
  assert.ok(!(out instanceof Promise));
  return out;
}

const jwt = (over: Partial<Identity> = {}): Identity => ({ id: 'alice', kind: 'jwt', subject: 'alice', issuer: 'https://idp', claims: {}, ...over });
const wwwAuth = (r: Rejection | undefined): unknown => r?.headers?.['www-authenticate'];

describe('authorization: roles', () => {
  it('anyOf passes with one of the roles, allOf needs all', () => {
    const any = stage({ roles: { anyOf: ['reader', 'admin'] } });
    assert.equal(run(any, jwt({ roles: ['reader'] })), undefined);
    assert.equal(run(any, jwt({ roles: ['other', 'admin'] })), undefined);
    assert.equal(run(any, jwt({ roles: ['other'] }))?.code, 'insufficient-role');
    assert.equal(run(any, jwt())?.code, 'insufficient-role');

    const all = stage({ roles: { allOf: ['reader', 'writer'] } });
    assert.equal(run(all, jwt({ roles: ['writer', 'reader', 'x'] })), undefined);
    const r = run(all, jwt({ roles: ['reader'] }));
    assert.equal(r?.status, 403);
    assert.equal(r?.code, 'insufficient-role');
    assert.equal(wwwAuth(r), undefined);
  });
});

describe('authorization: scopes', () => {
  it('reads the parsed scopes, or the `scope` string / `scp` array from the claims', () => {
    const s = stage({ scopes: { anyOf: ['orders:read'] } });
    assert.equal(run(s, jwt({ scopes: ['orders:read'] })), undefined);
    assert.equal(run(s, jwt({ claims: { scope: 'openid  orders:read' } })), undefined);
    assert.equal(run(s, jwt({ claims: { scp: ['orders:read'] } })), undefined);
    assert.equal(run(s, jwt({ claims: { scp: 'profile orders:read' } })), undefined);
    assert.equal(run(s, jwt({ claims: { scope: 'orders:reader' } }))?.code, 'insufficient-scope');
    // parsed scopes win over claims: the method decided what the token grants
    assert.equal(run(s, jwt({ scopes: [], claims: { scope: 'orders:read' } }))?.code, 'insufficient-scope');
  });

  it('allOf needs every scope', () => {
    const s = stage({ scopes: { allOf: ['a', 'b'] } });
    assert.equal(run(s, jwt({ scopes: ['b', 'a'] })), undefined);
    assert.equal(run(s, jwt({ scopes: ['a'] }))?.code, 'insufficient-scope');
  });

  it('answers 403 with an RFC 6750 insufficient_scope challenge on the scheme the token used', () => {
    const s = stage({ scopes: { allOf: ['orders:write', 'orders:read'] } }, { identity: { dpop: { algorithms: ['ES256'] } } });
    const r = run(s, jwt({ scopes: ['orders:read'] }));
    assert.equal(r?.status, 403);
    assert.equal(r?.code, 'insufficient-scope');
    assert.equal(r?.detail, 'this operation requires the scopes orders:write, orders:read');
    assert.equal(wwwAuth(r), 'Bearer realm="api", error="insufficient_scope", scope="orders:write orders:read"');
    // a DPoP-bound token (cnf.jkt) came with the DPoP scheme: the error goes there (RFC 9449 7.1)
    const d = run(s, jwt({ scopes: [], claims: { cnf: { jkt: 'thumb' } } }));
    assert.equal(wwwAuth(d), 'DPoP realm="api", error="insufficient_scope", scope="orders:write orders:read", algs="ES256"');
    // API keys and certificates have no scope challenge
    const k = run(s, { id: 'c1', kind: 'api-key', consumer: 'c1', keyId: 'k1', scopes: [] });
    assert.equal(k?.status, 403);
    assert.equal(wwwAuth(k), undefined);
  });

  it('names the single required scope', () => {
    const r = run(stage({ scopes: { anyOf: ['orders:write'] } }), jwt({ scopes: [] }));
    assert.equal(r?.detail, 'this operation requires scope orders:write');
  });
});

describe('authorization: claims', () => {
  it('equals compares strictly, through nested paths', () => {
    const s = stage({ claims: [{ claim: 'org.id', equals: 42 }, { claim: 'email_verified', equals: true }] });
    assert.equal(run(s, jwt({ claims: { org: { id: 42 }, email_verified: true } })), undefined);
    assert.equal(run(s, jwt({ claims: { org: { id: '42' }, email_verified: true } }))?.code, 'claim-not-allowed');
    assert.equal(run(s, jwt({ claims: { org: { id: 42 }, email_verified: 'true' } }))?.code, 'claim-not-allowed');
    assert.equal(run(s, jwt({ claims: { org: [42], email_verified: true } }))?.code, 'claim-not-allowed');
    assert.equal(run(s, jwt({ claims: { email_verified: true } }))?.code, 'claim-not-allowed');
    assert.equal(run(s, { id: 'c', kind: 'api-key' })?.code, 'claim-not-allowed');
  });

  it('oneOf takes a string or number claim, not an array', () => {
    const s = stage({ claims: [{ claim: 'tenant', oneOf: ['acme', 7] }] });
    assert.equal(run(s, jwt({ claims: { tenant: 'acme' } })), undefined);
    assert.equal(run(s, jwt({ claims: { tenant: 7 } })), undefined);
    assert.equal(run(s, jwt({ claims: { tenant: '7' } }))?.code, 'claim-not-allowed');
    assert.equal(run(s, jwt({ claims: { tenant: ['acme'] } }))?.code, 'claim-not-allowed');
  });

  it('contains looks into arrays and space-separated strings', () => {
    const s = stage({ claims: [{ claim: 'realm_access.roles', contains: 'ops' }] });
    assert.equal(run(s, jwt({ claims: { realm_access: { roles: ['dev', 'ops'] } } })), undefined);
    assert.equal(run(s, jwt({ claims: { realm_access: { roles: 'dev ops' } } })), undefined);
    assert.equal(run(s, jwt({ claims: { realm_access: { roles: 'devops' } } }))?.code, 'claim-not-allowed');
    assert.equal(run(s, jwt({ claims: { realm_access: { roles: { ops: true } } } }))?.code, 'claim-not-allowed');
    const n = stage({ claims: [{ claim: 'groups', contains: 3 }] });
    assert.equal(run(n, jwt({ claims: { groups: [1, 3] } })), undefined);
    assert.equal(run(n, jwt({ claims: { groups: ['3'] } }))?.code, 'claim-not-allowed');
  });

  it('resolves literal dotted claim names first and never walks into prototypes', () => {
    const claims = { 'https://example.com/roles': ['a'], org: { id: 1 }, 'org.id': 2 };
    assert.deepEqual(claimAt(claims, 'https://example.com/roles'), ['a']);
    assert.equal(claimAt(claims, 'org.id'), 2);
    assert.equal(claimAt({ org: { id: 1 } }, 'org.id'), 1);
    assert.equal(claimAt({ org: {} }, 'org.constructor'), undefined);
    assert.equal(claimAt({}, 'constructor'), undefined);
    assert.equal(claimAt({ a: 'x' }, 'a.length'), undefined);
  });

  it('matches space-separated tokens on boundaries', () => {
    assert.equal(hasSpaceToken('a ab b', 'b'), true);
    assert.equal(hasSpaceToken('ab abc', 'b'), false);
    assert.equal(hasSpaceToken('x', ''), false);
  });
});

describe('authorization: per method and unauthenticated callers', () => {
  it('a method entry replaces the route policy (GET for readers, DELETE for admins); HEAD follows GET', () => {
    const s = stage({ roles: { anyOf: ['writer'] }, methods: { GET: { roles: { anyOf: ['reader', 'writer'] } }, DELETE: { roles: { allOf: ['admin'] } } } });
    const reader = jwt({ roles: ['reader'] });
    const admin = jwt({ roles: ['admin'] });
    assert.equal(run(s, reader, 'GET'), undefined);
    assert.equal(run(s, reader, 'HEAD'), undefined);
    assert.equal(run(s, reader, 'DELETE')?.code, 'insufficient-role');
    assert.equal(run(s, admin, 'DELETE'), undefined);
    assert.equal(run(s, admin, 'POST')?.code, 'insufficient-role'); // route level: writer
    assert.equal(run(s, jwt({ roles: ['writer'] }), 'POST'), undefined);
  });

  it('an empty method policy opens that method, even to anonymous callers', () => {
    const s = stage({ scopes: { anyOf: ['w'] }, methods: { GET: {} } });
    assert.equal(run(s, { id: 'anonymous', kind: 'anonymous' }, 'GET'), undefined);
    assert.equal(run(s, { id: 'anonymous', kind: 'anonymous' }, 'POST')?.status, 401);
  });

  it('an open policy compiles to nothing', () => {
    assert.equal(authorizationStage.compile({}, testCompileEnv({ route: JWT_ROUTE })), null);
    assert.equal(authorizationStage.compile({ methods: { GET: {} } }, testCompileEnv({ route: JWT_ROUTE })), null);
  });

  it('an anonymous identity gets 401 with a plain challenge', () => {
    const r = run(stage({ roles: { anyOf: ['reader'] } }), { id: 'anonymous', kind: 'anonymous' });
    assert.equal(r?.status, 401);
    assert.equal(r?.code, 'authentication-required');
    assert.equal(wwwAuth(r), 'DPoP realm="api", algs="ES256 RS256 PS256 EdDSA", Bearer realm="api"');
  });

  it('no identity: 401 listing every scheme the route accepts, no error code (RFC 6750 3.1)', () => {
    const route: Partial<RouteConfig> = {
      authentication: { methods: [{ apiKey: {} }, { jwt: { issuers: ['idp'], dpop: 'off' } }, { introspection: { server: 'as' } }] },
    };
    const r = run(stage({ scopes: { anyOf: ['x'] } }, { route }), undefined);
    assert.equal(r?.status, 401);
    assert.equal(wwwAuth(r), 'ApiKey, Bearer');
    // a route with client certificates only has no scheme to challenge with: 403
    const m = run(stage({ roles: { anyOf: ['x'] } }, { route: { clientCert: { required: false } } }), undefined);
    assert.equal(m?.status, 403);
    assert.equal(m?.code, 'authentication-required');
    assert.equal(wwwAuth(m), undefined);
  });

  it('derives challenge schemes from the methods', () => {
    assert.deepEqual(routeChallengeSchemes({ methods: [{ jwt: { issuers: ['a'] } }] }), ['DPoP', 'Bearer']);
    assert.deepEqual(routeChallengeSchemes({ methods: [{ jwt: { issuers: ['a'], dpop: 'required' } }, { introspection: { server: 's' } }] }), ['DPoP', 'Bearer']);
    assert.deepEqual(routeChallengeSchemes({ methods: [{ jwt: { issuers: ['a'], dpop: 'required' } }] }), ['DPoP']);
    assert.deepEqual(routeChallengeSchemes(undefined), []);
  });
});

describe('authorization: MFA step-up (RFC 9470)', () => {
  const NOW = Math.floor(Date.now() / 1000);
  const policy: AuthorizationConfig = { mfa: { amr: ['mfa', 'hwk'], acr: ['urn:acr:gold'], maxAgeSec: 300 } };

  it('amr without an accepted factor → 401 with acr_values and max_age', () => {
    const r = run(stage(policy), jwt({ claims: { amr: ['pwd'], auth_time: NOW } }));
    assert.equal(r?.status, 401);
    assert.equal(r?.code, 'insufficient-user-authentication');
    assert.equal(wwwAuth(r), 'Bearer realm="api", error="insufficient_user_authentication", error_description="multi-factor authentication is required", acr_values="urn:acr:gold", max_age=300');
  });

  it('passes once amr has mfa, or acr is accepted', () => {
    const s = stage(policy);
    assert.equal(run(s, jwt({ claims: { amr: ['pwd', 'mfa'], auth_time: NOW - 10 } })), undefined);
    assert.equal(run(s, jwt({ claims: { acr: 'urn:acr:gold', auth_time: NOW } })), undefined);
    assert.equal(run(s, jwt({ claims: { acr: 'urn:acr:silver', auth_time: NOW } }))?.code, 'insufficient-user-authentication');
    assert.equal(run(s, jwt({ claims: { amr: 'mfa', auth_time: NOW } }))?.code, 'insufficient-user-authentication'); // amr is an array
  });

  it('auth_time too old or missing → 401 asking for a recent authentication', () => {
    const s = stage(policy);
    const old = run(s, jwt({ claims: { amr: ['mfa'], auth_time: NOW - 3600 } }));
    assert.equal(old?.status, 401);
    assert.match(String(wwwAuth(old)), /error_description="a more recent authentication is required", acr_values="urn:acr:gold", max_age=300$/);
    assert.equal(run(s, jwt({ claims: { amr: ['mfa'] } }))?.status, 401);
    assert.equal(run(s, jwt({ claims: { amr: ['mfa'], auth_time: String(NOW) } }))?.status, 401);
    // without maxAgeSec, auth_time does not matter
    assert.equal(run(stage({ mfa: { amr: ['otp'] } }), jwt({ claims: { amr: ['otp'] } })), undefined);
  });

  it('without acr or maxAgeSec the challenge carries neither', () => {
    const r = run(stage({ mfa: { amr: ['otp'] } }), jwt({ claims: {} }));
    assert.equal(wwwAuth(r), 'Bearer realm="api", error="insufficient_user_authentication", error_description="multi-factor authentication is required"');
  });

  it('needs token claims: an API key is pointed at the token schemes, a certificate refused', () => {
    const key = run(stage(policy), { id: 'c1', kind: 'api-key', claims: { amr: ['mfa'], auth_time: NOW } });
    assert.equal(key?.status, 401);
    assert.match(String(wwwAuth(key)), /^DPoP realm="api", error="insufficient_user_authentication", .*, Bearer realm="api", error="insufficient_user_authentication"/);
    const cert = run(stage(policy, { route: { clientCert: { required: true } } }), { id: 'svc', kind: 'mtls', claims: { subject: 'svc' } });
    assert.equal(cert?.status, 403);
    assert.equal(cert?.code, 'insufficient-user-authentication');
    assert.equal(wwwAuth(cert), undefined);
  });

  it('refuses an mfa block with neither amr nor acr at compile time', () => {
    assert.throws(() => authorizationStage.compile({ mfa: { maxAgeSec: 60 } }, testCompileEnv({ route: JWT_ROUTE })), /authorization\.mfa: set amr or acr/);
  });

  it('checks roles, scopes and claims before MFA', () => {
    const s = stage({ scopes: { anyOf: ['s'] }, mfa: { amr: ['mfa'] } });
    assert.equal(run(s, jwt({ scopes: [], claims: { amr: ['pwd'] } }))?.code, 'insufficient-scope');
  });
});

describe('authorization: security events', () => {
  it('emits one event per refusal with reason, route, client, consumer and method; none on success', () => {
    const events = new SecurityEventBus();
    const seen: SecurityEvent[] = [];
    events.subscribe((e) => seen.push(e));
    const s = stage({ scopes: { anyOf: ['w'] } }, { events });
    run(s, jwt({ scopes: ['w'], consumer: 'shop' }));
    assert.equal(seen.length, 0);
    run(s, jwt({ scopes: [], consumer: 'shop' }));
    run(s, undefined);
    assert.equal(seen.length, 2);
    const [a, b] = seen;
    assert.deepEqual({ ...a, time: 0 }, {
      type: 'authorization', reason: 'insufficient-scope', route: 'r', clientIp: '192.0.2.7', requestId: 'req-1',
      consumer: 'shop', method: 'jwt', credentialId: 'https://idp', time: 0,
    });
    assert.ok(Math.abs(a!.time - Date.now()) < 5000);
    assert.equal(b?.reason, 'authentication-required');
    assert.equal(b?.consumer, undefined);
    assert.equal(b?.method, undefined);
  });
});

describe('authorization: semantic checks', () => {
  const cfg = (routes: Partial<RouteConfig>[]): GatewayConfig => ({
    listeners: [{ name: 'main', address: '127.0.0.1', port: 0 }],
    routes: routes.map((r, i) => ({ id: `r${i}`, match: { pathPrefix: '/' }, respond: { status: 200 }, ...r }) as RouteConfig),
  });

  it('accepts a sound configuration', () => {
    assert.deepEqual(authorizationIssues(cfg([{ ...JWT_ROUTE, authorization: { scopes: { anyOf: ['a:b'] }, mfa: { acr: ['gold'] }, methods: { GET: {} } } }])), []);
  });

  it('reports authorization with nothing that establishes an identity', () => {
    const issues = authorizationIssues(cfg([{ authorization: { roles: { anyOf: ['x'] } } }]));
    assert.equal(issues.length, 1);
    assert.equal(issues[0]?.path, 'routes[0].authorization');
    assert.equal(issues[0]?.severity, 'error');
    assert.deepEqual(authorizationIssues(cfg([{ clientCert: { required: true }, authorization: { roles: { anyOf: ['x'] } } }])), []);
  });

  it('warns about method policies the route never matches', () => {
    const issues = authorizationIssues(cfg([{ ...JWT_ROUTE, match: { pathPrefix: '/', methods: ['GET'] }, authorization: { methods: { GET: {}, DELETE: { roles: { anyOf: ['a'] } } } } }]));
    assert.deepEqual(issues.map((i) => [i.path, i.severity]), [['routes[0].authorization.methods.DELETE', 'warning']]);
  });

  it('reports unusable mfa blocks and scopes no token can carry', () => {
    const issues = authorizationIssues(cfg([
      { ...JWT_ROUTE, authorization: { mfa: { maxAgeSec: 60 }, scopes: { allOf: ['ok', 'has space'] } } },
      { authentication: { methods: [{ apiKey: {} }] }, authorization: { methods: { POST: { mfa: { amr: ['mfa'] } } } } },
    ]));
    assert.deepEqual(issues.map((i) => [i.path, i.severity]), [
      ['routes[0].authorization.scopes.allOf[1]', 'error'],
      ['routes[0].authorization.mfa', 'error'],
      ['routes[1].authorization.methods.POST.mfa', 'warning'],
    ]);
  });
});
