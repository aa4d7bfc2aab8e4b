// Authorization through a real gateway: JWTs (HS256, static secret) minted here, a real upstream behind.
// Scope refusals with their RFC 6750 challenge, per-method policies, anonymous routes, and the RFC 9470
// step-up round trip (401 with acr_values / max_age, then 200 once the token shows MFA).
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { SignJWT, type JWTPayload } from 'jose';
import { startGateway, config, get } from '../helpers/gateway.js';
import { startUpstream } from '../helpers/upstream.js';
import type { SecurityEvent } from '../../src/observability/security-events.js';

const SECRET = randomBytes(32).toString('base64url');
const KEY = Buffer.from(SECRET, 'base64url');
const ISSUER = 'https://idp.test';

const up = await startUpstream('orders');
const { gw, base } = await startGateway(config({
  identity: {
    issuers: { idp: { issuer: ISSUER, audiences: ['orders-api'], algorithms: ['HS256'], keys: [{ secret: SECRET }], rolesClaim: 'roles' } },
  },
  upstreams: { orders: { targets: [{ url: up.url }] } },
  routes: [
    {
      id: 'orders',
      match: { pathPrefix: '/orders' },
      upstream: 'orders',
      authentication: { methods: [{ jwt: { issuers: ['idp'] } }], realm: 'orders' },
      authorization: {
        scopes: { anyOf: ['orders:read'] },
        methods: {
          POST: { scopes: { anyOf: ['orders:write'] } },
          DELETE: { roles: { anyOf: ['admin'] }, mfa: { amr: ['mfa', 'hwk'], acr: ['urn:acr:mfa'], maxAgeSec: 300 } },
        },
      },
    },
    {
      id: 'catalog',
      match: { pathPrefix: '/catalog' },
      upstream: 'orders',
      authentication: { methods: [{ jwt: { issuers: ['idp'], dpop: 'off' } }], anonymous: true, realm: 'catalog' },
      authorization: { methods: { POST: { roles: { anyOf: ['editor'] } } } },
    },
  ],
}));
const events: SecurityEvent[] = [];
const unsubscribe = gw.events.subscribe((e) => { if (e.type === 'authorization') events.push(e); });
after(async () => { unsubscribe(); await gw.close(0); await up.close(); });

async function token(claims: JWTPayload): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(ISSUER)
    .setAudience('orders-api')
    .setSubject('alice')
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(KEY);
}

const bearer = async (claims: JWTPayload): Promise<Record<string, string>> => ({ authorization: `Bearer ${await token(claims)}` });
const now = (): number => Math.floor(Date.now() / 1000);

describe('authorization end to end', () => {
  it('401 with a challenge without a token; the upstream never sees the request', async () => {
    const seen = up.seen.length;
    const r = await get(`${base}/orders`);
    assert.equal(r.status, 401);
    assert.match(String(r.headers['www-authenticate']), /Bearer realm="orders"/);
    assert.equal(r.headers['content-type'], 'application/problem+json');
    assert.equal(up.seen.length, seen);
  });

  it('403 insufficient_scope with the RFC 6750 challenge, 200 with the scope', async () => {
    events.length = 0;
    const seen = up.seen.length;
    const r = await get(`${base}/orders`, { headers: await bearer({ scope: 'openid profile' }) });
    assert.equal(r.status, 403);
    assert.equal(r.headers['www-authenticate'], 'Bearer realm="orders", error="insufficient_scope", scope="orders:read"');
    const body = r.json<{ type: string; detail: string }>();
    assert.match(body.type, /\/insufficient-scope$/);
    assert.equal(body.detail, 'this operation requires scope orders:read');
    assert.equal(up.seen.length, seen);
    assert.equal(events.length, 1);
    assert.equal(events[0]?.reason, 'insufficient-scope');
    assert.equal(events[0]?.route, 'orders');
    assert.equal(events[0]?.method, 'jwt');
    assert.equal(events[0]?.clientIp, '127.0.0.1');

    const ok = await get(`${base}/orders/7`, { headers: await bearer({ scope: 'openid orders:read' }) });
    assert.equal(ok.status, 200);
    assert.equal(up.seen.at(-1)?.url, '/orders/7');
  });

  it('a per-method policy replaces the route policy', async () => {
    const reader = await bearer({ scope: 'orders:read' });
    const writer = await bearer({ scope: 'orders:write' });
    const r = await get(`${base}/orders`, { method: 'POST', headers: reader, body: '{}' });
    assert.equal(r.status, 403);
    assert.equal(r.headers['www-authenticate'], 'Bearer realm="orders", error="insufficient_scope", scope="orders:write"');
    assert.equal((await get(`${base}/orders`, { method: 'POST', headers: writer, body: '{}' })).status, 200);
    // the write scope alone does not open GET (route level: orders:read)
    assert.equal((await get(`${base}/orders`, { headers: writer })).status, 403);
    // DELETE asks for a role, not a scope
    const d = await get(`${base}/orders/7`, { method: 'DELETE', headers: writer });
    assert.equal(d.status, 403);
    assert.match(d.json<{ type: string }>().type, /\/insufficient-role$/);
  });

  it('step-up: 401 insufficient_user_authentication, then 200 once amr has mfa', async () => {
    events.length = 0;
    const pwdOnly = await get(`${base}/orders/7`, { method: 'DELETE', headers: await bearer({ roles: ['admin'], amr: ['pwd'], auth_time: now() }) });
    assert.equal(pwdOnly.status, 401);
    assert.equal(
      pwdOnly.headers['www-authenticate'],
      'Bearer realm="orders", error="insufficient_user_authentication", error_description="multi-factor authentication is required", acr_values="urn:acr:mfa", max_age=300',
    );
    assert.match(pwdOnly.json<{ type: string }>().type, /\/insufficient-user-authentication$/);
    assert.equal(events.at(-1)?.reason, 'insufficient-user-authentication');

    const stale = await get(`${base}/orders/7`, { method: 'DELETE', headers: await bearer({ roles: ['admin'], amr: ['pwd', 'mfa'], auth_time: now() - 3600 }) });
    assert.equal(stale.status, 401);
    assert.match(String(stale.headers['www-authenticate']), /error_description="a more recent authentication is required"/);

    const mfa = await get(`${base}/orders/7`, { method: 'DELETE', headers: await bearer({ roles: ['admin'], amr: ['pwd', 'mfa'], auth_time: now() }) });
    assert.equal(mfa.status, 200);
    assert.equal(up.seen.at(-1)?.method, 'DELETE');
    const acr = await get(`${base}/orders/7`, { method: 'DELETE', headers: await bearer({ roles: ['admin'], acr: 'urn:acr:mfa', auth_time: now() }) });
    assert.equal(acr.status, 200);
  });

  it('anonymous access only where the route allows it, and only for open methods', async () => {
    assert.equal((await get(`${base}/catalog`)).status, 200);
    const r = await get(`${base}/catalog`, { method: 'POST', body: '{}' });
    assert.equal(r.status, 401);
    assert.equal(r.headers['www-authenticate'], 'Bearer realm="catalog"');
    assert.equal((await get(`${base}/catalog`, { method: 'POST', body: '{}', headers: await bearer({ roles: ['editor'] }) })).status, 200);
    assert.equal((await get(`${base}/catalog`, { method: 'POST', body: '{}', headers: await bearer({ roles: ['viewer'] }) })).status, 403);
  });
});
