// End to end with a real OpenID provider (oidc-provider): discovery → jwks_uri, client-credentials JWT
// access tokens through the gateway, key rotation during the run (new kid fetched once, old and new kid
// both accepted during the overlap), opaque tokens via the provider's introspection endpoint, DPoP-bound
// tokens with real proofs, and the methods combined with API keys on one route.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID, createHash } from 'node:crypto';
import { SignJWT, generateKeyPair, exportJWK, calculateJwkThumbprint, decodeProtectedHeader } from 'jose';
import { startGateway, config, get } from '../helpers/gateway.js';
import { startUpstream } from '../helpers/upstream.js';
import { startIdp, signWith, RESOURCE, GATEWAY_CLIENT_ID, GATEWAY_CLIENT_SECRET, CLIENT_ID } from '../helpers/oidc.js';
import { generateApiKey, hashApiKey } from '../../src/identity/api-keys/format.js';
import type { SecurityEvent } from '../../src/observability/security-events.js';

const PEPPER = 'pepper-0123456789-0123456789-0123456789';
const apiKey = generateApiKey();
const idp = await startIdp();
const up = await startUpstream('api');
const { gw, base, port } = await startGateway(config({
  identity: {
    pepper: PEPPER,
    consumers: [
      { id: 'partner', roles: ['partner'], apiKeys: [{ id: 'k1', hash: hashApiKey(PEPPER, apiKey) }] },
      { id: CLIENT_ID, roles: ['service'], metadata: { plan: 'gold' } },
    ],
    issuers: {
      idp: { issuer: idp.issuer, discovery: true, algorithms: ['RS256'], audiences: [RESOURCE], consumerClaim: 'client_id', jwks: { unknownKidCooldownMs: 0 } },
    },
    introspection: {
      as: { endpoint: `${idp.issuer}/token/introspection`, clientId: GATEWAY_CLIENT_ID, clientSecret: GATEWAY_CLIENT_SECRET, issuer: idp.issuer },
    },
  },
  upstreams: { api: { targets: [{ url: up.url }] } },
  routes: [
    { id: 'jwt', match: { pathPrefix: '/jwt' }, upstream: 'api', authentication: { methods: [{ jwt: { issuers: ['idp'] } }], forward: { consumer: 'X-Consumer', method: 'X-Auth-Method', scopes: 'X-Scopes' } } },
    { id: 'opaque', match: { pathPrefix: '/opaque' }, upstream: 'api', authentication: { methods: [{ introspection: { server: 'as', hideCredentials: true } }], forward: { consumer: 'X-Consumer', method: 'X-Auth-Method' } } },
    { id: 'dpop', match: { pathPrefix: '/dpop' }, upstream: 'api', authentication: { methods: [{ jwt: { issuers: ['idp'], dpop: 'required' } }], forward: { method: 'X-Auth-Method' } } },
    {
      id: 'mixed', match: { pathPrefix: '/mixed' }, upstream: 'api',
      authentication: { methods: [{ apiKey: {} }, { jwt: { issuers: ['idp'] } }], forward: { consumer: 'X-Consumer', method: 'X-Auth-Method' } },
    },
  ],
}));
const events: SecurityEvent[] = [];
gw.events.subscribe((e) => events.push(e));
after(async () => { await gw.close(0); await Promise.all([idp.close(), up.close()]); });

const echo = (r: { json<T>(): T }) => r.json<{ headers: Record<string, string> }>().headers;

test('discovery and JWKS: a client-credentials JWT access token is accepted, identity mapped to the consumer', async () => {
  const t = await idp.jwtAccessToken('read write');
  const r = await get(`${base}/jwt/orders`, { headers: { authorization: `Bearer ${t}` } });
  assert.equal(r.status, 200, r.body);
  const h = echo(r);
  assert.equal(h['x-consumer'], CLIENT_ID);
  assert.equal(h['x-auth-method'], 'jwt');
  assert.equal(h['x-scopes'], 'read write');
  assert.equal(idp.hitsOf('/.well-known/openid-configuration'), 1);
  assert.equal(idp.hitsOf('/jwks'), 1);
  // reuse: served from the verification cache, nothing more fetched
  for (let i = 0; i < 5; i++) assert.equal((await get(`${base}/jwt/orders`, { headers: { authorization: `Bearer ${t}` } })).status, 200);
  assert.equal(idp.hitsOf('/jwks'), 1);
});

test('key rotation during the run: the new kid is fetched once, old and new tokens are both accepted during the overlap', async () => {
  const oldToken = await idp.jwtAccessToken();
  const oldKid = decodeProtectedHeader(oldToken).kid;
  assert.equal((await get(`${base}/jwt/x`, { headers: { authorization: `Bearer ${oldToken}` } })).status, 200);
  const jwksBefore = idp.hitsOf('/jwks');

  const next = await idp.rotate();
  const newToken = await idp.jwtAccessToken();
  assert.equal(decodeProtectedHeader(newToken).kid, next.kid);
  assert.notEqual(next.kid, oldKid);
  const results = await Promise.all(Array.from({ length: 10 }, () => get(`${base}/jwt/x`, { headers: { authorization: `Bearer ${newToken}` } })));
  assert.deepEqual(results.map((r) => r.status), Array(10).fill(200));
  assert.equal(idp.hitsOf('/jwks'), jwksBefore + 1, 'exactly one refetch for the new kid');

  // a fresh token signed with the old key (still published) verifies too
  const oldKey = idp.published()[1]!;
  const oldSigned = await signWith(oldKey, { iss: idp.issuer, aud: RESOURCE, sub: 'svc', client_id: CLIENT_ID, exp: Math.floor(Date.now() / 1000) + 60 });
  assert.equal((await get(`${base}/jwt/x`, { headers: { authorization: `Bearer ${oldSigned}` } })).status, 200);
  assert.equal((await get(`${base}/jwt/x`, { headers: { authorization: `Bearer ${oldToken}` } })).status, 200);
  assert.equal(idp.hitsOf('/jwks'), jwksBefore + 1);
});

test('introspection: an opaque token is checked at the provider, cached, and hidden from the upstream', async () => {
  const t = await idp.opaqueAccessToken('read');
  const before = idp.hitsOf('/token/introspection');
  const r = await get(`${base}/opaque/x`, { headers: { authorization: `Bearer ${t}` } });
  assert.equal(r.status, 200, r.body);
  const h = echo(r);
  assert.equal(h['x-auth-method'], 'introspection');
  assert.equal(h['x-consumer'], CLIENT_ID);
  assert.equal(h.authorization, undefined, 'hideCredentials');
  assert.equal((await get(`${base}/opaque/x`, { headers: { authorization: `Bearer ${t}` } })).status, 200);
  assert.equal(idp.hitsOf('/token/introspection'), before + 1, 'second request served from the cache');

  const n = events.length;
  const bad = await get(`${base}/opaque/x`, { headers: { authorization: `Bearer ${randomUUID()}` } });
  assert.equal(bad.status, 401);
  assert.equal(events.at(-1)!.reason, 'token-inactive');
  assert.equal(events.length, n + 1);
  // a JWT access token is not an opaque token this provider introspects: refused as well
  assert.equal((await get(`${base}/opaque/x`, { headers: { authorization: `Bearer ${await idp.jwtAccessToken()}` } })).status, 401);
});

test('introspection endpoint down: fail closed with 503 and Retry-After', async () => {
  const t = await idp.opaqueAccessToken('write');
  idp.down = true;
  try {
    const r = await get(`${base}/opaque/x`, { headers: { authorization: `Bearer ${t}` } });
    assert.equal(r.status, 503);
    assert.equal(r.headers['retry-after'], '1');
    assert.equal(events.at(-1)!.reason, 'introspection-unavailable');
  } finally {
    idp.down = false;
  }
  assert.equal((await get(`${base}/opaque/x`, { headers: { authorization: `Bearer ${t}` } })).status, 200);
});

test('DPoP: a bound token with a valid proof is accepted; as a bearer token, with a replayed proof, or unbound where DPoP is required it is refused', async () => {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk = await exportJWK(publicKey);
  const jkt = await calculateJwkThumbprint(jwk, 'sha256');
  const key = idp.signingKey();
  const token = await signWith(key, { iss: idp.issuer, aud: RESOURCE, sub: 'svc', client_id: CLIENT_ID, cnf: { jkt }, exp: Math.floor(Date.now() / 1000) + 60 });
  const proof = (htu: string) => new SignJWT({ htm: 'GET', htu, jti: randomUUID(), ath: createHash('sha256').update(token).digest('base64url') })
    .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk }).setIssuedAt().sign(privateKey);
  const url = `http://127.0.0.1:${port}/dpop/orders`;

  const p = await proof(url);
  const ok = await get(`${base}/dpop/orders`, { headers: { authorization: `DPoP ${token}`, dpop: p } });
  assert.equal(ok.status, 200, ok.body);
  assert.equal(echo(ok)['x-auth-method'], 'jwt');

  const replay = await get(`${base}/dpop/orders`, { headers: { authorization: `DPoP ${token}`, dpop: p } });
  assert.equal(replay.status, 401);
  assert.equal(events.at(-1)!.reason, 'dpop-replay');
  assert.match(String(replay.headers['www-authenticate']), /DPoP .*error="invalid_dpop_proof"/);

  const asBearer = await get(`${base}/jwt/orders`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(asBearer.status, 401);
  assert.equal(events.at(-1)!.reason, 'dpop-token-as-bearer');

  const wrongUri = await get(`${base}/dpop/orders`, { headers: { authorization: `DPoP ${token}`, dpop: await proof(`http://127.0.0.1:${port}/elsewhere`) } });
  assert.equal(wrongUri.status, 401);
  assert.equal(events.at(-1)!.reason, 'dpop-htu-mismatch');

  const unbound = await get(`${base}/dpop/orders`, { headers: { authorization: `Bearer ${await idp.jwtAccessToken()}` } });
  assert.equal(unbound.status, 401);
  assert.equal(events.at(-1)!.reason, 'dpop-required');
});

test('combined with API keys on one route: either method alone works; no credential → challenges for every scheme', async () => {
  const byKey = await get(`${base}/mixed/x`, { headers: { 'x-api-key': apiKey } });
  assert.equal(byKey.status, 200, byKey.body);
  assert.equal(echo(byKey)['x-consumer'], 'partner');
  assert.equal(echo(byKey)['x-auth-method'], 'api-key');

  const byJwt = await get(`${base}/mixed/x`, { headers: { authorization: `Bearer ${await idp.jwtAccessToken()}` } });
  assert.equal(byJwt.status, 200, byJwt.body);
  assert.equal(echo(byJwt)['x-auth-method'], 'jwt');

  const none = await get(`${base}/mixed/x`);
  assert.equal(none.status, 401);
  const challenge = String(none.headers['www-authenticate']);
  for (const scheme of ['ApiKey', 'DPoP', 'Bearer']) assert.match(challenge, new RegExp(scheme));

  // a bad JWT is refused even though the route also takes API keys: no fall-through
  const badJwt = await get(`${base}/mixed/x`, { headers: { authorization: 'Bearer not.a.jwt' } });
  assert.equal(badJwt.status, 401);
});
