// The apiKey method on its own (configured keys; the store-backed path is in test/identity/).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compileApiKeyMethod } from './api-key.js';
import type { ApiKeyMethodConfig } from './schema.js';
import type { AuthFailure, AuthOutcome } from './types.js';
import type { IdentityConfig } from '../../identity/schema.js';
import { generateApiKey, hashApiKey } from '../../identity/api-keys/format.js';
import { testCompileEnv } from '../../../test/helpers/compile-env.js';
import { fakeContext } from '../../../test/helpers/fake-context.js';

const PEPPER = 'unit-test-pepper-0123456789abcdefghijkl';
const K = {
  good: generateApiKey(), scoped: generateApiKey(), disabled: generateApiKey(), expired: generateApiKey(),
  net: generateApiKey(), web: generateApiKey(), other: generateApiKey(),
};
const identity: IdentityConfig = {
  pepper: PEPPER,
  consumers: [{
    id: 'acme',
    roles: ['admin'],
    scopes: ['read'],
    metadata: { plan: 'gold' },
    apiKeys: [
      { id: 'k-good', hash: hashApiKey(PEPPER, K.good) },
      { id: 'k-scoped', hash: hashApiKey(PEPPER, K.scoped), scopes: ['write'] },
      { id: 'k-disabled', hash: hashApiKey(PEPPER, K.disabled), enabled: false },
      { id: 'k-expired', hash: hashApiKey(PEPPER, K.expired), expiresAt: '2020-01-01T00:00:00Z' },
      { id: 'k-net', hash: hashApiKey(PEPPER, K.net), cidrs: ['10.0.0.0/8'] },
      { id: 'k-web', hash: hashApiKey(PEPPER, K.web), origins: ['https://App.example.com:443'] },
    ],
  }],
};

function method(cfg: ApiKeyMethodConfig = {}, id: IdentityConfig = identity) {
  return compileApiKeyMethod(cfg, testCompileEnv({ identity: id }).identity);
}

const sync = (o: ReturnType<ReturnType<typeof method>['authenticate']>): AuthOutcome | undefined => {
  assert.ok(!(o instanceof Promise), 'API key checks are synchronous');
  return o;
};
const fail = (o: AuthOutcome | undefined): AuthFailure => {
  assert.ok(o !== undefined && !o.ok, `expected a failure, got ${JSON.stringify(o)}`);
  return o;
};

describe('apiKey method', () => {
  const m = method();

  it('accepts a key in X-API-Key: identity with consumer, key id, roles, scopes and metadata', () => {
    const o = sync(m.authenticate(fakeContext({ headers: { 'X-API-Key': K.good } })));
    assert.deepEqual(o, { ok: true, identity: { id: 'acme', kind: 'api-key', consumer: 'acme', keyId: 'k-good', roles: ['admin'], scopes: ['read'], metadata: { plan: 'gold' } } });
    assert.equal(m.kind, 'api-key');
    assert.deepEqual(m.challengeSchemes, ['ApiKey']);
  });

  it('accepts `Authorization: ApiKey <key>` (scheme case-insensitive); key scopes replace the consumer\'s', () => {
    const o = sync(m.authenticate(fakeContext({ headers: { authorization: `apikey ${K.scoped}` } })));
    assert.ok(o?.ok);
    assert.equal(o.identity.keyId, 'k-scoped');
    assert.deepEqual(o.identity.scopes, ['write']);
  });

  it('no key → undefined (the stage tries the next method); a Bearer token is not ours', () => {
    assert.equal(m.authenticate(fakeContext()), undefined);
    assert.equal(m.authenticate(fakeContext({ headers: { authorization: 'Bearer abc' } })), undefined);
    assert.equal(m.authenticate(fakeContext({ url: '/x?key=sort_field&page=2' })), undefined);
  });

  it('malformed, unknown, revoked-like states: same client text, different reasons', () => {
    const cases: [string, string][] = [
      ['nonsense', 'api-key-malformed'],
      [`${K.good.slice(0, -1)}${K.good.endsWith('a') ? 'b' : 'a'}`, 'api-key-malformed'],
      [K.other, 'api-key-unknown'],
      [K.disabled, 'api-key-disabled'],
      [K.expired, 'api-key-expired'],
    ];
    for (const [key, reason] of cases) {
      const f = fail(sync(m.authenticate(fakeContext({ headers: { 'x-api-key': key } }))));
      assert.equal(f.status, 401);
      assert.equal(f.reason, reason);
      assert.equal(f.description, 'invalid API key');
      assert.equal(f.error, 'invalid_token');
      assert.ok(!JSON.stringify(f).includes(key), 'the failure never carries the key');
    }
  });

  it('wrong client IP → 403 naming consumer and key id; an address inside the CIDRs passes', () => {
    const f = fail(sync(m.authenticate(fakeContext({ headers: { 'x-api-key': K.net }, clientIp: '192.0.2.7' }))));
    assert.deepEqual([f.status, f.reason, f.consumer, f.credentialId], [403, 'api-key-ip-not-allowed', 'acme', 'k-net']);
    assert.ok(sync(m.authenticate(fakeContext({ headers: { 'x-api-key': K.net }, clientIp: '10.1.2.3' })))?.ok);
    assert.ok(sync(m.authenticate(fakeContext({ headers: { 'x-api-key': K.net }, clientIp: '::ffff:10.9.9.9' })))?.ok);
  });

  it('origins: a listed Origin passes (normalized), another is refused, none passes', () => {
    const f = fail(sync(m.authenticate(fakeContext({ headers: { 'x-api-key': K.web, origin: 'https://evil.example' } }))));
    assert.deepEqual([f.status, f.reason], [403, 'api-key-origin-not-allowed']);
    assert.ok(sync(m.authenticate(fakeContext({ headers: { 'x-api-key': K.web, origin: 'https://app.example.com' } })))?.ok);
    assert.equal(fail(sync(m.authenticate(fakeContext({ headers: { 'x-api-key': K.web, origin: 'null' } })))).reason, 'api-key-origin-not-allowed');
    assert.ok(sync(m.authenticate(fakeContext({ headers: { 'x-api-key': K.web } })))?.ok);
  });

  it('a key in the query string is refused when the route has not opted in, and removed from ctx.query', () => {
    for (const q of [`api_key=${K.good}`, `APIKEY=${K.good}`, `x-api-key=${K.good}`, `key=${K.good}`, `api%5Fkey=${K.good}`]) {
      const ctx = fakeContext({ url: `/orders?page=1&${q}`, headers: { 'x-api-key': K.good } });
      const f = fail(sync(m.authenticate(ctx)));
      assert.deepEqual([f.status, f.reason, f.error], [401, 'api-key-in-query-not-allowed', 'invalid_request'], q);
      assert.match(f.description!, /X-API-Key header/);
      assert.equal(ctx.query, 'page=1');
    }
  });

  it('queryParam opt-in: the key is read from it and hidden from the upstream query', () => {
    const q = method({ queryParam: 'access_key' });
    const ctx = fakeContext({ url: `/x?a=1&access_key=${K.good}&b=2` });
    const o = sync(q.authenticate(ctx));
    assert.ok(o?.ok);
    q.hideCredentials!(ctx);
    assert.equal(ctx.query, 'a=1&b=2');
    // a bad key in the allowed parameter is removed too (the access log never sees it)
    const bad = fakeContext({ url: `/x?access_key=${K.other}` });
    assert.equal(fail(sync(q.authenticate(bad))).reason, 'api-key-unknown');
    assert.equal(bad.query, '');
  });

  it('two different keys in two places → 401 invalid_request; the same key twice is fine', () => {
    const f = fail(sync(m.authenticate(fakeContext({ headers: { 'x-api-key': K.good, authorization: `ApiKey ${K.scoped}` } }))));
    assert.deepEqual([f.reason, f.error], ['api-key-conflict', 'invalid_request']);
    assert.ok(sync(m.authenticate(fakeContext({ headers: { 'x-api-key': K.good, authorization: `ApiKey ${K.good}` } })))?.ok);
    const q = method({ queryParam: 'k' });
    assert.equal(fail(sync(q.authenticate(fakeContext({ url: `/?k=${K.good}`, headers: { 'x-api-key': K.scoped } })))).reason, 'api-key-conflict');
    assert.equal(fail(sync(q.authenticate(fakeContext({ url: `/?k=${K.good}&k=${K.scoped}` })))).reason, 'api-key-conflict');
  });

  it('hideCredentials removes the key header (any case) and an ApiKey Authorization, nothing else', () => {
    const ctx = fakeContext({ headers: { 'X-Api-Key': K.good, Accept: 'json' } });
    assert.ok(sync(m.authenticate(ctx))?.ok);
    m.hideCredentials!(ctx);
    assert.deepEqual(ctx.plan!.fwd, ['Accept', 'json']);
    const a = fakeContext({ headers: { Authorization: `ApiKey ${K.good}` } });
    assert.ok(sync(m.authenticate(a))?.ok);
    m.hideCredentials!(a);
    assert.deepEqual(a.plan!.fwd, []);
    assert.equal(method({ hideCredentials: false }).hideCredentials, undefined);
  });

  it('custom header; header: false ignores X-API-Key; authorizationScheme: false ignores Authorization', () => {
    const c = method({ header: 'X-Portcullis-Key', authorizationScheme: false });
    assert.ok(sync(c.authenticate(fakeContext({ headers: { 'x-portcullis-key': K.good } })))?.ok);
    assert.equal(c.authenticate(fakeContext({ headers: { 'x-api-key': K.good } })), undefined);
    assert.equal(c.authenticate(fakeContext({ headers: { authorization: `ApiKey ${K.good}` } })), undefined);
    const n = method({ header: false });
    assert.equal(n.authenticate(fakeContext({ headers: { 'x-api-key': K.good } })), undefined);
    assert.ok(sync(n.authenticate(fakeContext({ headers: { authorization: `ApiKey ${K.good}` } })))?.ok);
  });

  it('compile errors: no pepper, no source for the key', () => {
    assert.throws(() => method({}, { consumers: [] }), /API keys need a pepper: set identity.pepper/);
    assert.throws(() => method({ header: false, authorizationScheme: false }), /no source left for the key/);
  });
});
