// Key sets and the verification cache: JWKS cache lifetime from HTTP headers, the last good set kept
// while the IdP is down, start-up with the IdP down (fail closed, then recover), rotation (new kid fetched
// once, old kid valid during the overlap, retired kid dropped from the cache), cache hits without jose,
// cache never past exp, static keys (HMAC secrets, PEM, JWK) and what they refuse.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, type JWTPayload, type JWK } from 'jose';
import { startScripted, type ScriptedUpstream } from '../helpers/servers.js';
import { newSigningKey, signWith, type SigningKey } from '../helpers/oidc.js';
import { testCompileEnv } from '../helpers/compile-env.js';
import { fakeContext } from '../helpers/fake-context.js';
import { waitFor } from '../helpers/wait.js';
import { makePki } from '../helpers/certs.js';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { compileJwtMethod } from '../../src/stages/authentication/jwt.js';
import { issuerVerifier } from '../../src/identity/jwt/verify.js';
import { VerificationCache } from '../../src/identity/verification-cache.js';
import { IssuerKeys } from '../../src/identity/jwt/key-set.js';
import { cacheLifetimeMs } from '../../src/identity/jwt/fetch.js';
import { silentLogger } from '../../src/observability/logger.js';
import { serviceKey } from '../../src/services/services.js';
import type { IssuerConfig } from '../../src/identity/schema.js';
import type { AuthMethod, AuthOutcome } from '../../src/stages/authentication/types.js';

const ISS = 'https://idp.example.test';
const AUD = 'api';
const now = (): number => Math.floor(Date.now() / 1000);
const claims = (over: JWTPayload = {}): JWTPayload => ({ iss: ISS, aud: AUD, sub: 'alice', iat: now(), exp: now() + 300, ...over });

/** A JWKS endpoint whose keys, status and headers a test changes at will. */
interface FakeJwks { server: ScriptedUpstream; keys: SigningKey[]; status: number; headers: Record<string, string>; url: string; fetches(): number }
async function fakeJwks(keys: SigningKey[]): Promise<FakeJwks> {
  const f = { keys, status: 200, headers: {} as Record<string, string> } as FakeJwks;
  f.server = await startScripted('jwks', (_req, res) => {
    res.writeHead(f.status, { 'content-type': 'application/json', ...f.headers });
    res.end(f.status === 200 ? JSON.stringify({ keys: f.keys.map((k) => k.publicJwk) }) : '{"error":"down"}');
  });
  f.url = `${f.server.url}/jwks`;
  f.fetches = () => f.server.seen.length;
  return f;
}

const servers: ScriptedUpstream[] = [];
const keySets: IssuerKeys[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await Promise.all(keySets.map((k) => k.close()));
});

function issuer(jwksUri: string, over: Partial<IssuerConfig> = {}): IssuerConfig {
  return { issuer: ISS, jwksUri, algorithms: ['RS256', 'ES256'], audiences: [AUD], leewaySec: 0, ...over };
}

/** A compiled jwt method over one issuer, its services ready; `clock` replaces Date.now for cache and jose. */
async function method(cfg: IssuerConfig, opts: { cacheEntries?: number; clock?: () => number } = {}): Promise<{ m: AuthMethod; verifications(): number; keys: IssuerKeys }> {
  const env = testCompileEnv({ identity: { issuers: { idp: cfg }, verificationCache: { maxEntries: opts.cacheEntries ?? 100 } } });
  const m = compileJwtMethod({ issuers: ['idp'] }, env.identity, opts.clock !== undefined ? { now: opts.clock } : {});
  await env.identity.services.ready();
  env.identity.services.commit();
  // the method's issuer verifier (with a custom clock it is private to the method: no counter then)
  const v = opts.clock === undefined ? issuerVerifier('idp', env.identity) : undefined;
  const keys = env.identity.services.use(serviceKey('issuer', 'idp', cfg, env.identity.baseDir), (): IssuerKeys => { throw new Error('issuer keys not created'); });
  keySets.push(keys);
  return { m, verifications: () => v?.verifications ?? -1, keys };
}

async function outcome(m: AuthMethod, token: string): Promise<AuthOutcome> {
  const r = m.authenticate(fakeContext({ headers: { authorization: `Bearer ${token}` } }));
  assert.ok(r !== undefined);
  return r;
}
const reasonOf = (o: AuthOutcome): string => (o.ok ? 'ok' : o.reason);

test('cache lifetime from Cache-Control max-age / no-store / Expires', () => {
  const t = Date.parse('2030-01-01T00:00:00Z');
  assert.equal(cacheLifetimeMs({ 'cache-control': 'public, max-age=120' }, t), 120_000);
  assert.equal(cacheLifetimeMs({ 'cache-control': 'no-store' }, t), 0);
  assert.equal(cacheLifetimeMs({ expires: 'Tue, 01 Jan 2030 00:10:00 GMT', date: 'Tue, 01 Jan 2030 00:00:00 GMT' }, t), 600_000);
  assert.equal(cacheLifetimeMs({ expires: 'garbage' }, t), 0);
  assert.equal(cacheLifetimeMs({}, t), undefined);
});

test('JWKS cache lifetime follows max-age, clamped to [minRefreshMs, maxRefreshMs]', async () => {
  const k = await newSigningKey('ES256');
  const jwks = await fakeJwks([k]);
  servers.push(jwks.server);
  const cases: [string, number][] = [['max-age=600', 600_000], ['max-age=5', 60_000], ['max-age=999999', 3_600_000]];
  for (const [cc, expected] of cases) {
    jwks.headers = { 'cache-control': cc };
    const keys = new IssuerKeys({ name: 'idp', config: issuer(jwks.url, { jwks: { minRefreshMs: 60_000, maxRefreshMs: 3_600_000 } }), baseDir: '.', logger: silentLogger });
    keySets.push(keys);
    const t0 = Date.now();
    await keys.ready();
    assert.ok(keys.loaded);
    const lifetime = keys.expiresAt - t0;
    assert.ok(lifetime >= expected - 50 && lifetime <= expected + 1000, `${cc}: lifetime ${lifetime}`);
  }
});

test('stale set: refreshed in the background while requests keep being served', async () => {
  const k = await newSigningKey('ES256');
  const jwks = await fakeJwks([k]);
  servers.push(jwks.server);
  jwks.headers = { 'cache-control': 'max-age=1' };
  const { m } = await method(issuer(jwks.url, { jwks: { minRefreshMs: 1000 } }), { cacheEntries: 0 });
  assert.equal(jwks.fetches(), 1);
  assert.equal(reasonOf(await outcome(m, await signWith(k, claims()))), 'ok');
  await waitFor(() => jwks.fetches() >= 2, { what: 'background refresh', timeoutMs: 3000 });
  assert.equal(reasonOf(await outcome(m, await signWith(k, claims()))), 'ok');
});

test('IdP down after the first fetch: valid tokens are still accepted with the last good set', async () => {
  const k = await newSigningKey('ES256');
  const jwks = await fakeJwks([k]);
  servers.push(jwks.server);
  const { m, keys } = await method(issuer(jwks.url, { jwks: { unknownKidCooldownMs: 0 } }), { cacheEntries: 0 });
  jwks.status = 503;
  // an unknown kid makes it refetch: the fetch fails, the set stays
  assert.equal(reasonOf(await outcome(m, await signWith(k, claims(), { kid: 'new-kid' }))), 'jwt-unknown-kid');
  assert.equal(jwks.fetches(), 2);
  assert.ok(keys.loaded);
  await jwks.server.close();
  assert.equal(reasonOf(await outcome(m, await signWith(k, claims()))), 'ok');
  assert.equal(reasonOf(await outcome(m, await signWith(k, claims({ sub: 'bob' })))), 'ok');
});

test('IdP down at start: ready() still resolves, tokens fail closed (503), and work once the IdP is back', async () => {
  const k = await newSigningKey('ES256');
  const jwks = await fakeJwks([k]);
  servers.push(jwks.server);
  jwks.status = 500;
  const { m, keys } = await method(issuer(jwks.url, { jwks: { unknownKidCooldownMs: 0 } }));
  assert.equal(keys.loaded, false);
  const o = await outcome(m, await signWith(k, claims()));
  assert.equal(o.ok, false);
  assert.equal(!o.ok && o.status, 503);
  assert.equal(reasonOf(o), 'jwt-keys-unavailable');
  jwks.status = 200;
  assert.equal(reasonOf(await outcome(m, await signWith(k, claims()))), 'ok');
});

test('rotation: a new kid is fetched once and accepted, the old kid keeps working during the overlap, a retired kid is dropped from the cache', async () => {
  const k1 = await newSigningKey('RS256', 'old');
  const k2 = await newSigningKey('ES256', 'new');
  const jwks = await fakeJwks([k1]);
  servers.push(jwks.server);
  const { m, verifications } = await method(issuer(jwks.url, { jwks: { unknownKidCooldownMs: 0 } }));
  const oldToken = await signWith(k1, claims());
  assert.equal(reasonOf(await outcome(m, oldToken)), 'ok');
  assert.equal(jwks.fetches(), 1);

  jwks.keys = [k2, k1]; // the IdP publishes the new key and starts signing with it
  const newTokens = await Promise.all(Array.from({ length: 5 }, (_, i) => signWith(k2, claims({ sub: `u${i}` }))));
  const results = await Promise.all(newTokens.map((t) => outcome(m, t)));
  assert.deepEqual(results.map(reasonOf), ['ok', 'ok', 'ok', 'ok', 'ok']);
  assert.equal(jwks.fetches(), 2, 'one refetch shared by the concurrent requests');
  assert.equal(reasonOf(await outcome(m, await signWith(k1, claims({ sub: 'still-old' })))), 'ok');
  assert.equal(jwks.fetches(), 2);

  // the old key is retired: a refresh (triggered here by an unknown kid) drops cached verdicts
  const before = verifications();
  assert.equal(reasonOf(await outcome(m, oldToken)), 'ok', 'cached');
  assert.equal(verifications(), before);
  jwks.keys = [k2];
  assert.equal(reasonOf(await outcome(m, await signWith(k2, claims(), { kid: 'nope' }))), 'jwt-unknown-kid');
  assert.equal(jwks.fetches(), 3);
  assert.equal(reasonOf(await outcome(m, oldToken)), 'jwt-unknown-kid', 'the cached verdict for the retired key is gone');
});

test('verification cache: the second verification of a token is synchronous and does not run jose', async () => {
  const k = await newSigningKey('ES256');
  const jwks = await fakeJwks([k]);
  servers.push(jwks.server);
  const { m, verifications } = await method(issuer(jwks.url));
  const t = await signWith(k, claims({ scope: 'a b' }));
  const first = await outcome(m, t);
  assert.equal(reasonOf(first), 'ok');
  assert.equal(verifications(), 1);
  const second = m.authenticate(fakeContext({ headers: { authorization: `Bearer ${t}` } }));
  assert.ok(second !== undefined && !(second instanceof Promise), 'cache hit is synchronous');
  assert.equal(second, first, 'the very same frozen outcome');
  assert.equal(verifications(), 1);
  assert.ok(second.ok && Object.isFrozen(second.identity));
  assert.deepEqual(second.ok && second.identity.scopes, ['a', 'b']);
});

test('verification cache: a cached token past its exp is refused', async () => {
  const k = await newSigningKey('ES256');
  const jwks = await fakeJwks([k]);
  servers.push(jwks.server);
  let clock = Date.now();
  const { m } = await method(issuer(jwks.url), { clock: () => clock });
  const exp = Math.floor(clock / 1000) + 10;
  const t = await signWith(k, claims({ exp }));
  assert.equal(reasonOf(await outcome(m, t)), 'ok');
  clock = exp * 1000 - 1;
  const hit = m.authenticate(fakeContext({ headers: { authorization: `Bearer ${t}` } }));
  assert.ok(hit !== undefined && !(hit instanceof Promise) && hit.ok, 'still cached just before exp');
  clock = exp * 1000 + 1;
  assert.equal(reasonOf(await outcome(m, t)), 'jwt-expired');
});

test('static keys: HMAC secret (HS256), PEM public key and public JWK verify their own algorithms', async () => {
  const secret = randomBytes(32);
  const dir = mkdtempSync(join(tmpdir(), 'ptest-jwt-'));
  try {
    const rsa = await newSigningKey('RS256', 'file-key');
    const pemFile = join(dir, 'key.pem');
    writeFileSync(pemFile, createPublicKey({ key: rsa.publicJwk as import('node:crypto').JsonWebKey, format: 'jwk' }).export({ type: 'spki', format: 'pem' }));
    const ec = await newSigningKey('ES256', 'jwk-key');
    const env = testCompileEnv({
      baseDir: dir,
      identity: {
        issuers: {
          hs: { issuer: 'https://hs.example', keys: [{ secret: secret.toString('base64url') }], algorithms: ['HS256'], audiences: [AUD] },
          pk: { issuer: 'https://pk.example', keys: [{ pem: 'key.pem', kid: 'file-key' }, { jwk: ec.publicJwk as Record<string, unknown> }], algorithms: ['RS256', 'ES256'], audiences: [AUD] },
        },
      },
    });
    const hs = compileJwtMethod({ issuers: ['hs'] }, env.identity);
    const pk = compileJwtMethod({ issuers: ['pk'] }, env.identity);
    await env.identity.services.ready();
    env.identity.services.commit();
    const hsToken = await new SignJWT(claims({ iss: 'https://hs.example' })).setProtectedHeader({ alg: 'HS256' }).sign(secret);
    assert.equal(reasonOf(await outcome(hs, hsToken)), 'ok');
    const wrongSecret = await new SignJWT(claims({ iss: 'https://hs.example' })).setProtectedHeader({ alg: 'HS256' }).sign(randomBytes(32));
    assert.equal(reasonOf(await outcome(hs, wrongSecret)), 'jwt-bad-signature');
    assert.equal(reasonOf(await outcome(pk, await signWith(rsa, claims({ iss: 'https://pk.example' })))), 'ok');
    assert.equal(reasonOf(await outcome(pk, await signWith(ec, claims({ iss: 'https://pk.example' })))), 'ok');
    // without kid: the keys that fit the algorithm are tried
    assert.equal(reasonOf(await outcome(pk, await signWith(ec, claims({ iss: 'https://pk.example' }), { kid: undefined }))), 'ok');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('static keys that are refused at compile time: short secret, private PEM, private JWK, symmetric JWK, key type not matching the algorithms', () => {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const privPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const privJwk = privateKey.export({ format: 'jwk' }) as JWK;
  const pubJwk = createPublicKey(privateKey).export({ format: 'jwk' }) as JWK;
  const bad: [IssuerConfig['keys'], IssuerConfig['algorithms'], RegExp][] = [
    [[{ secret: randomBytes(16).toString('base64url') }], ['HS256'], /at least 32 bytes/],
    [[{ secret: 'not base64url!' }], ['HS256'], /base64url/],
    [[{ secret: randomBytes(32).toString('base64url') }], ['RS256'], /HS256/],
    [[{ pem: privPem }], ['ES256'], /private key/],
    [[{ jwk: privJwk as Record<string, unknown> }], ['ES256'], /private key members/],
    [[{ jwk: { kty: 'oct', k: randomBytes(32).toString('base64url') } }], ['HS256'], /symmetric/],
    [[{ jwk: pubJwk as Record<string, unknown> }], ['RS256'], /cannot verify any/],
  ];
  for (const [keys, algorithms, msg] of bad) {
    const env = testCompileEnv({ identity: { issuers: { x: { issuer: ISS, keys, algorithms, audiences: [AUD] } } } });
    assert.throws(() => compileJwtMethod({ issuers: ['x'] }, env.identity), msg);
  }
});

test('discovery: jwks_uri from the metadata; a document naming another issuer is refused (keys never loaded)', async () => {
  const k = await newSigningKey('ES256');
  let claimedIssuer = '';
  const idp = await startScripted('idp', (req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    if (req.url === '/.well-known/openid-configuration') res.end(JSON.stringify({ issuer: claimedIssuer, jwks_uri: `${idp.url}/keys` }));
    else res.end(JSON.stringify({ keys: [k.publicJwk] }));
  });
  servers.push(idp);
  claimedIssuer = idp.url;
  const good = await method({ issuer: idp.url, discovery: true, algorithms: ['ES256'], audiences: [AUD] });
  assert.equal(reasonOf(await outcome(good.m, await signWith(k, claims({ iss: idp.url })))), 'ok');
  assert.deepEqual(idp.seen.map((s) => s.url), ['/.well-known/openid-configuration', '/keys']);

  claimedIssuer = 'https://someone-else.example';
  const bad = await method({ issuer: `${idp.url}/`, discovery: true, algorithms: ['ES256'], audiences: [AUD], jwks: { unknownKidCooldownMs: 60_000 } });
  assert.equal(bad.keys.loaded, false);
  assert.equal(reasonOf(await outcome(bad.m, await signWith(k, claims({ iss: `${idp.url}/` })))), 'jwt-keys-unavailable');
});

test('JWKS entries that are not verification keys are skipped: use=enc, private members, unfit algorithms', async () => {
  const sig = await newSigningKey('ES256', 'sig');
  const enc = await newSigningKey('ES256', 'enc');
  const priv = await newSigningKey('ES256', 'priv');
  const srv = await startScripted('jwks', (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [sig.publicJwk, { ...enc.publicJwk, use: 'enc' }, priv.privateJwk, { kty: 'RSA', kid: 'broken', n: 'AQAB' }, 'junk'] }));
  });
  servers.push(srv);
  const { m } = await method(issuer(`${srv.url}/jwks`, { jwks: { unknownKidCooldownMs: 60_000 } }));
  assert.equal(reasonOf(await outcome(m, await signWith(sig, claims()))), 'ok');
  assert.equal(reasonOf(await outcome(m, await signWith(enc, claims()))), 'jwt-unknown-kid');
  assert.equal(reasonOf(await outcome(m, await signWith(priv, claims()))), 'jwt-unknown-kid');
});

test('https JWKS from a private CA: trusted with jwks.ca (file), refused without it', async () => {
  const pki = makePki();
  const k = await newSigningKey('ES256');
  const srv = https.createServer({ cert: pki.server.certPem, key: pki.server.keyPem }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [k.publicJwk] }));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  try {
    const url = `https://127.0.0.1:${(srv.address() as AddressInfo).port}/jwks`;
    const trusted = await method(issuer(url, { jwks: { ca: pki.ca.cert } }));
    assert.ok(trusted.keys.loaded);
    assert.equal(reasonOf(await outcome(trusted.m, await signWith(k, claims()))), 'ok');
    const untrusted = await method(issuer(url, { jwks: { unknownKidCooldownMs: 60_000 } }));
    assert.equal(untrusted.keys.loaded, false);
    assert.equal(reasonOf(await outcome(untrusted.m, await signWith(k, claims()))), 'jwt-keys-unavailable');
  } finally {
    await Promise.all(keySets.splice(0).map((x) => x.close()));
    await new Promise<void>((r) => { srv.close(() => r()); srv.closeAllConnections(); });
  }
});

test('a static key that fails to import only fails ready(): nobody waiting (a reload abandoned first) is no unhandled rejection', async () => {
  const ec = await newSigningKey('ES256', 'bad-point');
  // a P-256 point that is not on the curve: passes the synchronous checks, refused by the import
  const bad = { ...ec.publicJwk, y: ec.publicJwk.x } as JWK;
  let unhandled: unknown;
  const onUnhandled = (err: unknown): void => { unhandled = err; };
  process.on('unhandledRejection', onUnhandled);
  try {
    const keys = new IssuerKeys({ name: 'idp', config: { issuer: ISS, keys: [{ jwk: bad }], algorithms: ['ES256'], audiences: [AUD] }, baseDir: '.', logger: silentLogger });
    await new Promise((r) => setTimeout(r, 50)); // the import settles; unhandled rejections are reported after it
    assert.equal(unhandled, undefined);
    await assert.rejects(keys.ready());
    await keys.close();
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});

test('IdP replies that are refused: a body over 1 MiB, a redirect (never followed, even to real keys), JSON without keys', async () => {
  const k = await newSigningKey('ES256');
  const attacker = await newSigningKey('ES256', k.publicJwk.kid as string);
  const evil = await startScripted('evil', (_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(JSON.stringify({ keys: [attacker.publicJwk] })); });
  let mode = '';
  const idp = await startScripted('idp', (_req, res) => {
    if (mode === 'huge') { res.writeHead(200, { 'content-type': 'application/json' }); res.end(JSON.stringify({ keys: [k.publicJwk], pad: 'x'.repeat(1024 * 1024 + 10) })); return; }
    if (mode === 'redirect') { res.writeHead(302, { location: `${evil.url}/keys` }); res.end(); return; }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ notKeys: [k.publicJwk] }));
  });
  servers.push(idp, evil);
  for (mode of ['huge', 'redirect', 'no-keys']) {
    const { m, keys } = await method(issuer(`${idp.url}/jwks`, { jwks: { unknownKidCooldownMs: 60_000 } }));
    assert.equal(keys.loaded, false, mode);
    const forged = await outcome(m, await signWith(attacker, claims()));
    assert.deepEqual([forged.ok, !forged.ok && forged.status, reasonOf(forged)], [false, 503, 'jwt-keys-unavailable'], mode);
  }
  assert.equal(evil.seen.length, 0, 'the redirect target is never fetched');
});

test('maxAgeSec: a token issued longer ago than allowed is refused even before exp; a fresh one passes; no iat is refused', async () => {
  const k = await newSigningKey('ES256');
  const jwks = await fakeJwks([k]);
  servers.push(jwks.server);
  const { m } = await method(issuer(jwks.url, { maxAgeSec: 60 }));
  assert.equal(reasonOf(await outcome(m, await signWith(k, claims()))), 'ok');
  const old = await outcome(m, await signWith(k, claims({ iat: now() - 120, exp: now() + 300 })));
  assert.equal(old.ok, false);
  const noIat = claims();
  delete noIat.iat;
  assert.equal((await outcome(m, await signWith(k, noIat))).ok, false);
});
