// Unit tests of the jwt method: where the token is read from, the DPoP binding rules per mode, and
// hideCredentials. Keys are static (an ES256 JWK), so no server is involved.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair, calculateJwkThumbprint, type JWTPayload } from 'jose';
import { testCompileEnv } from '../../../test/helpers/compile-env.js';
import { fakeContext } from '../../../test/helpers/fake-context.js';
import { compileJwtMethod, authorizationScheme, hasAccessTokenParam, tokenAfterScheme } from './jwt.js';
import type { IdentityConfig } from '../../identity/schema.js';
import type { JwtMethodConfig } from './schema.js';
import type { AuthOutcome } from './types.js';

const ISS = 'https://idp.example';
const signer = await generateKeyPair('ES256');
const jwk = { ...(await exportJWK(signer.publicKey)), kid: 'k1' };
const holder = await generateKeyPair('ES256');
const holderJwk = await exportJWK(holder.publicKey);
const jkt = await calculateJwkThumbprint(holderJwk, 'sha256');

const identity: IdentityConfig = {
  issuers: { idp: { issuer: ISS, keys: [{ jwk }], algorithms: ['ES256'], audiences: ['api'], rolesClaim: 'realm_access.roles', consumerClaim: 'azp' } },
  consumers: [{ id: 'mobile-app', roles: ['app'], metadata: { tier: 'free' } }],
};

async function method(cfg: Partial<JwtMethodConfig> = {}) {
  const env = testCompileEnv({ identity });
  const m = compileJwtMethod({ issuers: ['idp'], ...cfg }, env.identity);
  await env.identity.services.ready();
  return m;
}

const token = (claims: JWTPayload = {}): Promise<string> =>
  new SignJWT({ iss: ISS, aud: 'api', sub: 'alice', exp: Math.floor(Date.now() / 1000) + 60, ...claims }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).sign(signer.privateKey);

const URL_ = '/orders/1';
const HTU = 'https://api.example/orders/1';
const proof = (accessToken: string, over: Record<string, unknown> = {}): Promise<string> =>
  new SignJWT({ htm: 'GET', htu: HTU, jti: randomUUID(), ath: createHash('sha256').update(accessToken).digest('base64url'), ...over })
    .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk: holderJwk }).setIssuedAt().sign(holder.privateKey);

async function run(m: Awaited<ReturnType<typeof method>>, headers: Record<string, string>, url = URL_): Promise<AuthOutcome | undefined> {
  return m.authenticate(fakeContext({ url, headers, secure: true, host: 'api.example' }));
}
const reasonOf = (o: AuthOutcome | undefined): string => (o === undefined ? 'skipped' : o.ok ? 'ok' : o.reason);

test('Authorization parsing: scheme case-insensitive, b64token syntax, other schemes are not ours', () => {
  assert.equal(authorizationScheme('Bearer x'), 1);
  assert.equal(authorizationScheme('bEaReR x'), 1);
  assert.equal(authorizationScheme('DPoP x'), 2);
  assert.equal(authorizationScheme('dpop x'), 2);
  assert.equal(authorizationScheme('Basic x'), 0);
  assert.equal(authorizationScheme('Bearerx'), 0);
  assert.equal(authorizationScheme('ApiKey x'), 0);
  assert.equal(tokenAfterScheme('Bearer   abc.def-_~+/==', 6), 'abc.def-_~+/==');
  assert.equal(tokenAfterScheme('Bearer a b', 6), undefined);
  assert.equal(tokenAfterScheme('Bearer ', 6), undefined);
});

test('access_token query parameter detection (percent-encoded names too), no false positives', () => {
  assert.equal(hasAccessTokenParam('access_token=x'), true);
  assert.equal(hasAccessTokenParam('a=1&access_token'), true);
  assert.equal(hasAccessTokenParam('a=1&access%5Ftoken=x'), true);
  assert.equal(hasAccessTokenParam('access_token_hint=x&my_access_token=y'), false);
  assert.equal(hasAccessTokenParam('q=access_token'), false);
  assert.equal(hasAccessTokenParam(''), false);
  assert.equal(hasAccessTokenParam('bad=%E0%A4%A'), false);
});

test('identity from the claims: subject, consumer by claim (roles merged, metadata), roles by dot path, scp scopes', async () => {
  const m = await method();
  const o = await run(m, { authorization: `Bearer ${await token({ azp: 'mobile-app', realm_access: { roles: ['reader'] }, scp: ['a', 'b'] })}` });
  assert.ok(o !== undefined && o.ok, reasonOf(o));
  assert.deepEqual({ ...o.identity, claims: undefined }, {
    id: 'mobile-app', kind: 'jwt', subject: 'alice', issuer: ISS, consumer: 'mobile-app', roles: ['reader', 'app'], scopes: ['a', 'b'], metadata: { tier: 'free' }, claims: undefined,
  });
  const unknownConsumer = await run(m, { authorization: `Bearer ${await token({ azp: 'nobody' })}` });
  assert.ok(unknownConsumer?.ok);
  assert.equal(unknownConsumer.identity.id, 'alice');
  assert.equal(unknownConsumer.identity.consumer, undefined);
  assert.equal(reasonOf(await run(m, { authorization: `Bearer ${await token({ sub: undefined })}` })), 'jwt-claim-invalid');
});

test('no Authorization (or another scheme) → skipped; token in query → invalid_request', async () => {
  const m = await method();
  assert.equal(await run(m, {}), undefined);
  assert.equal(await run(m, { authorization: 'Basic dXNlcjpwdw==' }), undefined);
  const q = await run(m, {}, `${URL_}?access_token=${await token()}`);
  assert.equal(reasonOf(q), 'token-in-query-not-allowed');
  assert.equal(q !== undefined && !q.ok && q.error, 'invalid_request');
});

test('DPoP allowed (default): bound token + valid proof ok; bound token as Bearer refused; unbound token with DPoP scheme refused; unbound Bearer ok', async () => {
  const m = await method();
  assert.deepEqual(m.challengeSchemes, ['DPoP', 'Bearer']);
  const bound = await token({ cnf: { jkt } });
  assert.equal(reasonOf(await run(m, { authorization: `DPoP ${bound}`, DPoP: await proof(bound) })), 'ok');
  // the access token is now cached: the proof is still checked on every request
  assert.equal(reasonOf(await run(m, { authorization: `DPoP ${bound}` })), 'dpop-proof-missing');
  const p = await proof(bound);
  assert.equal(reasonOf(await run(m, { authorization: `DPoP ${bound}`, DPoP: p })), 'ok');
  const replay = await run(m, { authorization: `DPoP ${bound}`, DPoP: p });
  assert.equal(reasonOf(replay), 'dpop-replay');
  assert.equal(replay !== undefined && !replay.ok && replay.error, 'invalid_dpop_proof');
  assert.equal(reasonOf(await run(m, { authorization: `DPoP ${bound}`, DPoP: await proof(bound, { htm: 'POST' }) })), 'dpop-htm-mismatch');
  assert.equal(reasonOf(await run(m, { authorization: `Bearer ${bound}` })), 'dpop-token-as-bearer');
  const unbound = await token();
  assert.equal(reasonOf(await run(m, { authorization: `DPoP ${unbound}`, DPoP: await proof(unbound) })), 'dpop-token-not-bound');
  assert.equal(reasonOf(await run(m, { authorization: `Bearer ${unbound}` })), 'ok');
});

test('DPoP required: unbound tokens refused; DPoP off: the DPoP scheme is refused, bound tokens cannot be used at all', async () => {
  const required = await method({ dpop: 'required' });
  assert.deepEqual(required.challengeSchemes, ['DPoP']);
  assert.equal(reasonOf(await run(required, { authorization: `Bearer ${await token()}` })), 'dpop-required');
  const bound = await token({ cnf: { jkt } });
  assert.equal(reasonOf(await run(required, { authorization: `DPoP ${bound}`, DPoP: await proof(bound) })), 'ok');

  const off = await method({ dpop: 'off' });
  assert.deepEqual(off.challengeSchemes, ['Bearer']);
  const r = await run(off, { authorization: `DPoP ${bound}`, DPoP: await proof(bound) });
  assert.equal(reasonOf(r), 'dpop-not-accepted');
  assert.equal(reasonOf(await run(off, { authorization: `Bearer ${bound}` })), 'dpop-token-as-bearer');
});

test('hideCredentials: off by default; on removes Authorization and DPoP from the upstream request', async () => {
  const keep = await method();
  const hide = await method({ hideCredentials: true });
  const ctx = fakeContext({ headers: { Authorization: 'Bearer x', DPoP: 'p', Accept: '*/*' } });
  keep.hideCredentials?.(ctx);
  assert.deepEqual(ctx.plan!.fwd, ['Authorization', 'Bearer x', 'DPoP', 'p', 'Accept', '*/*']);
  hide.hideCredentials?.(ctx);
  assert.deepEqual(ctx.plan!.fwd, ['Accept', '*/*']);
});

test('unknown issuer name in the method config is a compile error', () => {
  assert.throws(() => compileJwtMethod({ issuers: ['nope'] }, testCompileEnv({ identity }).identity), /unknown issuer "nope"/);
});
