import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { issuerIssues } from './semantic.js';
import type { GatewayConfig, RouteConfig } from '../../config/schema.js';
import type { IdentityConfig, IssuerConfig } from '../schema.js';

const good: IssuerConfig = { issuer: 'https://idp.example', discovery: true, algorithms: ['RS256'], audiences: ['api'] };
const secret = randomBytes(32).toString('base64url');

function issues(identity: IdentityConfig, routes: RouteConfig[] = []): { path: string; message: string; severity: string }[] {
  return issuerIssues({ listeners: [{ name: 'main', address: '127.0.0.1', port: 0 }], routes, identity } as GatewayConfig);
}
const route = (methods: NonNullable<RouteConfig['authentication']>['methods']): RouteConfig => ({ id: 'r', match: { pathPrefix: '/' }, upstream: 'u', authentication: { methods } } as RouteConfig);

test('a sound configuration has no issues', () => {
  assert.deepEqual(issues({
    issuers: { idp: good, hs: { issuer: 'svc', keys: [{ secret }], algorithms: ['HS256'], audiences: ['api'] } },
    introspection: { as: { endpoint: 'https://as.example/introspect', clientId: 'gw', clientSecret: 's' } },
  }, [route([{ jwt: { issuers: ['idp', 'hs'] } }]), route([{ introspection: { server: 'as' } }])]), []);
});

test('exactly one key source per issuer', () => {
  const none = issues({ issuers: { x: { ...good, discovery: false } } });
  assert.match(none[0]!.message, /no key source/);
  const two = issues({ issuers: { x: { ...good, jwksUri: 'https://idp.example/jwks' } } });
  assert.equal(two[0]!.path, 'identity.issuers.x');
  assert.match(two[0]!.message, /one key source only \(found jwksUri, discovery\)/);
});

test('HMAC algorithms: never next to public-key algorithms, only with secrets of at least 32 bytes', () => {
  const mixed = issues({ issuers: { x: { issuer: 'i', keys: [{ secret }], algorithms: ['HS256', 'RS256'], audiences: ['a'] } } });
  assert.ok(mixed.some((i) => i.path === 'identity.issuers.x.algorithms' && /algorithm confusion/.test(i.message)));
  const remote = issues({ issuers: { x: { ...good, algorithms: ['HS256'] } } });
  assert.ok(remote.some((i) => /need a shared secret/.test(i.message)));
  const short = issues({ issuers: { x: { issuer: 'i', keys: [{ secret: randomBytes(16).toString('base64url') }], algorithms: ['HS256'], audiences: ['a'] } } });
  assert.deepEqual(short.map((i) => i.path), ['identity.issuers.x.keys[0].secret']);
  assert.ok(!short[0]!.message.includes('='), 'the secret is not echoed');
  const notB64 = issues({ issuers: { x: { issuer: 'i', keys: [{ secret: 'correct horse battery staple and more words here' }], algorithms: ['HS256'], audiences: ['a'] } } });
  assert.match(notB64[0]!.message, /base64url/);
  const unused = issues({ issuers: { x: { issuer: 'i', keys: [{ secret }], algorithms: ['RS256'], audiences: ['a'] } } });
  assert.ok(unused.some((i) => i.path === 'identity.issuers.x.keys[0]'));
});

test('static public keys: private material and symmetric JWKs refused; alg must be allowed', () => {
  const out = issues({
    issuers: {
      x: {
        issuer: 'i', algorithms: ['ES256'], audiences: ['a'],
        keys: [
          { pem: '-----BEGIN PRIVATE KEY-----\nMIG...\n-----END PRIVATE KEY-----' },
          { pem: 'keys/pub.pem', alg: 'RS256' },
          { jwk: { kty: 'EC', crv: 'P-256', x: 'a', y: 'b', d: 'secret' } },
          { jwk: { kty: 'oct', k: 'abc' } },
        ],
      },
    },
  });
  assert.deepEqual(out.map((i) => i.path), ['identity.issuers.x.keys[0].pem', 'identity.issuers.x.keys[1].alg', 'identity.issuers.x.keys[2].jwk', 'identity.issuers.x.keys[3].jwk']);
});

test('plain http to non-loopback hosts is a warning (JWKS, discovery, introspection); loopback is fine', () => {
  const out = issues({
    issuers: {
      a: { ...good, discovery: undefined, jwksUri: 'http://idp.internal/jwks' },
      b: { ...good, issuer: 'http://10.0.0.5:8080' },
      c: { ...good, discovery: undefined, jwksUri: 'http://127.0.0.1:9000/jwks' },
      d: { ...good, issuer: 'http://localhost:8080/realms/x' },
      e: { ...good, discovery: undefined, jwksUri: 'http://[::1]:9000/jwks' },
    },
    introspection: { as: { endpoint: 'http://as.internal/introspect', clientId: 'gw', clientSecret: 's' } },
  });
  assert.deepEqual(out.map((i) => [i.path, i.severity]), [
    ['identity.issuers.a.jwksUri', 'warning'],
    ['identity.issuers.b.issuer', 'warning'],
    ['identity.introspection.as.endpoint', 'warning'],
  ]);
  assert.ok(out.every((i) => !i.message.includes('internal')), 'URLs are not echoed');
});

test('jwks refresh bounds and settings without effect', () => {
  const out = issues({ issuers: { x: { ...good, jwks: { minRefreshMs: 10_000, maxRefreshMs: 5000 } }, y: { issuer: 'i', keys: [{ secret }], algorithms: ['HS256'], audiences: ['a'], jwks: { timeoutMs: 100 } } } });
  assert.deepEqual(out.map((i) => [i.path, i.severity]), [['identity.issuers.x.jwks.minRefreshMs', 'error'], ['identity.issuers.y.jwks', 'warning']]);
});

test('routes: unknown issuers and servers (with suggestions), duplicates, two issuers with the same iss', () => {
  const out = issues({
    issuers: { corp: good, corp2: { ...good }, other: { ...good, issuer: 'https://other.example' } },
    introspection: { as: { endpoint: 'https://as.example/i', clientId: 'gw', clientSecret: 's' } },
  }, [
    route([{ jwt: { issuers: ['crop', 'other', 'other'] } }]),
    route([{ jwt: { issuers: ['corp', 'corp2'] } }]),
    route([{ introspection: { server: 'ass' } }]),
  ]);
  assert.deepEqual(out.map((i) => i.path), [
    'routes[0].authentication.methods[0].jwt.issuers[0]',
    'routes[0].authentication.methods[0].jwt.issuers[2]',
    'routes[1].authentication.methods[0].jwt.issuers[1]',
    'routes[2].authentication.methods[0].introspection.server',
  ]);
  assert.match(out[0]!.message, /did you mean "corp"/);
  assert.match(out[2]!.message, /same iss value/);
  assert.match(out[3]!.message, /did you mean "as"/);
});

test('jwt and introspection on one route: the later one never sees a Bearer token (warning)', () => {
  const out = issues({
    issuers: { idp: good },
    introspection: { as: { endpoint: 'https://as.example/i', clientId: 'gw', clientSecret: 's' } },
  }, [route([{ jwt: { issuers: ['idp'] } }, { introspection: { server: 'as' } }])]);
  assert.deepEqual(out.map((i) => [i.path, i.severity]), [['routes[0].authentication.methods[1]', 'warning']]);
});
