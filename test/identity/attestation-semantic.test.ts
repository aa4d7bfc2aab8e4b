// Configuration checks for attestation verifiers and routes, and for identity.dpop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attestationIssues } from '../../src/stages/attestation/semantic.js';
import { dpopIssues } from '../../src/identity/dpop/semantic.js';
import type { GatewayConfig } from '../../src/config/schema.js';
import type { IdentityConfig } from '../../src/identity/schema.js';

const secret = Buffer.alloc(32, 1).toString('base64');
const route = (attestation: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ id: 'r', match: { pathPrefix: '/' }, respond: { status: 200 }, attestation, ...extra });
const cfg = (identity: IdentityConfig, routes: unknown[] = []): GatewayConfig => ({ listeners: [{ name: 'main', port: 8080 }], identity, routes } as unknown as GatewayConfig);
const messages = (c: GatewayConfig) => attestationIssues(c).map((i) => `${i.severity} ${i.path}: ${i.message}`);

test('a sound configuration has no issues', () => {
  assert.deepEqual(messages(cfg({ attestation: { app: { secret, algorithms: ['HS256'] } } }, [route({ verifier: 'app', bindingClaim: 'pay' }, { authentication: { methods: [{ jwt: { issuers: ['x'] } }] } })])), []);
});

test('verifier: exactly one key source', () => {
  assert.match(messages(cfg({ attestation: { app: { algorithms: ['ES256'] } } }))[0]!, /^error identity.attestation.app: needs exactly one key source: secret, keys or jwksUri \(has none\)/);
  assert.match(messages(cfg({ attestation: { app: { secret, jwksUri: 'https://x/jwks', algorithms: ['HS256'] } } }))[0]!, /has secret, jwksUri/);
});

test('verifier: HS* only with a secret, a secret only with HS*, at least 32 bytes, base64', () => {
  assert.match(messages(cfg({ attestation: { app: { jwksUri: 'https://x/jwks', algorithms: ['HS256', 'RS256'] } } }))[0]!, /^error identity.attestation.app.algorithms: HS256 need a shared secret/);
  assert.match(messages(cfg({ attestation: { app: { secret, algorithms: ['HS256', 'RS256'] } } }))[0]!, /a secret verifies HS256\/HS384\/HS512 tokens only: remove RS256/);
  const short = messages(cfg({ attestation: { app: { secret: Buffer.alloc(16, 1).toString('base64'), algorithms: ['HS256'] } } }));
  assert.deepEqual(short, ['error identity.attestation.app.secret: must decode to at least 32 bytes']);
  assert.deepEqual(messages(cfg({ attestation: { app: { secret: 'not base64!', algorithms: ['HS256'] } } })), ['error identity.attestation.app.secret: must be base64-encoded']);
  assert.match(messages(cfg({ attestation: { app: { jwksUri: 'http://idp/jwks', algorithms: ['ES256'] } } }))[0]!, /^warning .*plain http/);
});

test('route: unknown verifier, reserved header, binding without authentication', () => {
  const m = messages(cfg({ attestation: { app: { secret, algorithms: ['HS256'] } } }, [
    route({ verifier: 'nope' }),
    route({ verifier: 'app', header: 'Authorization' }),
    route({ verifier: 'app', bindingClaim: 'pay' }),
  ]));
  assert.deepEqual(m, [
    'error routes[0].attestation.verifier: no verifier "nope" under identity.attestation (have: app)',
    'error routes[1].attestation.header: "Authorization" cannot carry the attestation token: the header is removed before the request goes upstream',
    'warning routes[2].attestation.bindingClaim: the route has no authentication: the token is bound to an Authorization value nobody verifies',
  ]);
});

test('dpop: symmetric proof algorithms are an error', () => {
  assert.deepEqual(dpopIssues(cfg({ dpop: { algorithms: ['ES256'] } })), []);
  assert.deepEqual(dpopIssues(cfg({ dpop: { algorithms: ['ES256', 'HS256'] } })).map((i) => i.path), ['identity.dpop.algorithms']);
});
