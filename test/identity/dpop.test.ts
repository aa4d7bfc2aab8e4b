// DPoP proof verification (RFC 9449 §4.3) with real proofs signed by jose, against the memory store and
// against Redis shared by two store instances (two gateway processes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SignJWT, generateKeyPair, exportJWK, calculateJwkThumbprint, type JWK, type CryptoKey } from 'jose';
import { createDpopVerifier, requestHtu, dpopProofHeader, normalizeHtu, type DpopInput } from '../../src/identity/dpop/dpop.js';
import { createStateStore } from '../../src/state/index.js';
import { RequestContext } from '../../src/pipeline/context.js';
import { silentLogger } from '../../src/observability/logger.js';
import type { StateStore } from '../../src/state/types.js';
import { deleteTestKeys, testKeyPrefix } from '../helpers/redis.js';

const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
const jwk = await exportJWK(publicKey);
const jkt = await calculateJwkThumbprint(jwk, 'sha256');
const other = await generateKeyPair('ES256', { extractable: true });
const accessToken = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.sig';
const ath = createHash('sha256').update(accessToken).digest('base64url');
const URL_ = 'https://api.example.com/orders/42';

interface ProofOpts { jti?: string; htm?: string; htu?: string; iat?: number; ath?: string | undefined; key?: CryptoKey; headerJwk?: JWK; alg?: string; typ?: string }
async function proof(o: ProofOpts = {}): Promise<string> {
  const claims: Record<string, unknown> = { jti: o.jti ?? randomUUID(), htm: o.htm ?? 'GET', htu: o.htu ?? URL_ };
  if (!('ath' in o) || o.ath !== undefined) claims.ath = o.ath ?? ath;
  return new SignJWT(claims)
    .setProtectedHeader({ typ: o.typ ?? 'dpop+jwt', alg: o.alg ?? 'ES256', jwk: o.headerJwk ?? jwk })
    .setIssuedAt(o.iat ?? Math.floor(Date.now() / 1000))
    .sign(o.key ?? privateKey);
}

const input = (p: string | undefined, extra: Partial<DpopInput> = {}): DpopInput => ({ proof: p, method: 'GET', htu: URL_, accessToken, jkt, ...extra });
const memory = () => createStateStore(undefined);

async function reason(p: string | undefined, extra: Partial<DpopInput> = {}, state: StateStore = memory()): Promise<string> {
  const r = await createDpopVerifier(undefined, state).verify(input(p, extra), Date.now());
  return r.ok ? 'ok' : r.reason;
}

test('a valid proof is accepted', async () => {
  assert.equal(await reason(await proof()), 'ok');
});

test('replay: the same proof twice → the second is refused (dpop-replay)', async () => {
  const v = createDpopVerifier(undefined, memory());
  const p = await proof();
  assert.deepEqual(await v.verify(input(p), Date.now()), { ok: true });
  const r = await v.verify(input(p), Date.now());
  assert.equal(r.ok, false);
  assert.equal(!r.ok && r.reason, 'dpop-replay');
  assert.equal(!r.ok && r.description, 'the DPoP proof was already used');
});

test('replay across two gateway processes sharing Redis: exactly one acceptance', async () => {
  const prefix = testKeyPrefix('dpop');
  const cfg = { type: 'redis' as const, url: 'redis://127.0.0.1:6379', keyPrefix: prefix };
  const a = createStateStore(cfg, { logger: silentLogger });
  const b = createStateStore(cfg, { logger: silentLogger });
  try {
    await Promise.all([a.ready(), b.ready()]);
    const p = await proof();
    const results = await Promise.all([
      createDpopVerifier(undefined, a).verify(input(p), Date.now()),
      createDpopVerifier(undefined, b).verify(input(p), Date.now()),
    ]);
    assert.equal(results.filter((r) => r.ok).length, 1);
    assert.deepEqual(results.filter((r) => !r.ok).map((r) => !r.ok && r.reason), ['dpop-replay']);
  } finally {
    await Promise.all([a.close(), b.close()]);
    await deleteTestKeys(prefix);
  }
});

test('state store down: fail closed (dpop-replay-check-unavailable)', async () => {
  const broken: StateStore = { kind: 'redis', ready: async () => {}, close: async () => {}, claimOnce: () => Promise.reject(new Error('down')), rateLimit: () => Promise.reject(new Error('down')) };
  assert.equal(await reason(await proof(), {}, broken), 'dpop-replay-check-unavailable');
});

test('a proof for another method is refused (dpop-htm-mismatch)', async () => {
  assert.equal(await reason(await proof({ htm: 'POST' })), 'dpop-htm-mismatch');
  assert.equal(await reason(await proof(), { method: 'DELETE' }), 'dpop-htm-mismatch');
});

test('a proof for another URL or another host is refused (dpop-htu-mismatch)', async () => {
  assert.equal(await reason(await proof({ htu: 'https://api.example.com/orders/43' })), 'dpop-htu-mismatch');
  assert.equal(await reason(await proof({ htu: 'https://evil.example.com/orders/42' })), 'dpop-htu-mismatch');
  assert.equal(await reason(await proof({ htu: 'http://api.example.com/orders/42' })), 'dpop-htu-mismatch', 'other scheme');
  assert.equal(await reason(await proof({ htu: 'https://api.example.com:8443/orders/42' })), 'dpop-htu-mismatch', 'other port');
  assert.equal(await reason(await proof({ htu: 'not a uri' })), 'dpop-htu-mismatch');
});

test('htu: query and fragment are ignored; scheme/host case, default port and percent-encoding case normalized', async () => {
  assert.equal(await reason(await proof({ htu: `${URL_}?page=2#top` })), 'ok');
  assert.equal(await reason(await proof(), { htu: `${URL_}?x=1` }), 'ok');
  assert.equal(await reason(await proof({ htu: 'HTTPS://API.Example.COM:443/orders/42' })), 'ok');
  assert.equal(normalizeHtu('https://h/a%7eb%2fc'), 'https://h/a~b%2Fc');
  assert.equal(normalizeHtu('http://h:80'), 'http://h/');
  assert.equal(normalizeHtu('ftp://h/x'), undefined);
});

test('iat too old or too far in the future is refused (dpop-iat-out-of-window)', async () => {
  const now = Math.floor(Date.now() / 1000);
  assert.equal(await reason(await proof({ iat: now - 120 })), 'dpop-iat-out-of-window');
  assert.equal(await reason(await proof({ iat: now + 60 })), 'dpop-iat-out-of-window');
  assert.equal(await reason(await proof({ iat: now + 3 })), 'ok', 'within the leeway');
  const strict = createDpopVerifier({ proofMaxAgeSec: 5, leewaySec: 0 }, memory());
  const r = await strict.verify(input(await proof({ iat: now - 10 })), Date.now());
  assert.equal(!r.ok && r.reason, 'dpop-iat-out-of-window');
});

test('a proof for another access token, or without ath, is refused (dpop-ath-mismatch)', async () => {
  assert.equal(await reason(await proof({ ath: createHash('sha256').update('other-token').digest('base64url') })), 'dpop-ath-mismatch');
  assert.equal(await reason(await proof({ ath: undefined })), 'dpop-ath-mismatch');
});

test('a proof signed by a key other than the token is bound to is refused (dpop-key-mismatch)', async () => {
  const otherJwk = await exportJWK(other.publicKey);
  assert.equal(await reason(await proof({ key: other.privateKey, headerJwk: otherJwk })), 'dpop-key-mismatch');
});

test('a private key in the jwk header is refused (dpop-proof-malformed)', async () => {
  const priv = await exportJWK(privateKey);
  assert.ok(priv.d !== undefined);
  assert.equal(await reason(await proof({ headerJwk: priv })), 'dpop-proof-malformed');
});

test('HS256 and none proofs are refused (dpop-alg-not-allowed)', async () => {
  const secret = new Uint8Array(32).fill(7);
  const hs = await new SignJWT({ jti: randomUUID(), htm: 'GET', htu: URL_, ath })
    .setProtectedHeader({ typ: 'dpop+jwt', alg: 'HS256', jwk }).setIssuedAt().sign(secret);
  assert.equal(await reason(hs), 'dpop-alg-not-allowed');
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const none = `${b64({ typ: 'dpop+jwt', alg: 'none', jwk })}.${b64({ jti: randomUUID(), htm: 'GET', htu: URL_, ath, iat: Math.floor(Date.now() / 1000) })}.`;
  assert.equal(await reason(none), 'dpop-alg-not-allowed');
  assert.throws(() => createDpopVerifier({ algorithms: ['HS256'] }, memory()), /asymmetric algorithms only/);
});

test('missing, malformed and wrongly typed proofs', async () => {
  assert.equal(await reason(undefined), 'dpop-proof-missing');
  assert.equal(await reason(''), 'dpop-proof-malformed');
  assert.equal(await reason('abc.def'), 'dpop-proof-malformed');
  assert.equal(await reason(await proof({ typ: 'JWT' })), 'dpop-proof-malformed');
  assert.equal(await reason(await proof({ jti: 'x'.repeat(257) })), 'dpop-proof-malformed');
});

test('a tampered signature is refused (dpop-bad-signature)', async () => {
  const p = await proof();
  const [h, b, s] = p.split('.') as [string, string, string];
  const sig = Buffer.from(s, 'base64url');
  sig[5] = sig[5]! ^ 0xff;
  assert.equal(await reason(`${h}.${b}.${sig.toString('base64url')}`), 'dpop-bad-signature');
  // a payload swapped under the signature, too
  const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(b, 'base64url').toString()), htm: 'POST' })).toString('base64url');
  assert.equal(await reason(`${h}.${forged}.${s}`, { method: 'POST' }), 'dpop-bad-signature');
});

test('requestHtu: listener scheme, validated Host, raw request target without query; dpopProofHeader: exactly one', () => {
  const ctx = fakeCtx('/v1/a%7Eb/../c?x=1', ['Host', 'API.example.com:8443', 'DPoP', 'p1'], true);
  assert.equal(requestHtu(ctx), 'https://API.example.com:8443/v1/a%7Eb/../c');
  assert.equal(normalizeHtu(requestHtu(ctx)), 'https://api.example.com:8443/v1/c');
  assert.equal(requestHtu(fakeCtx('http://h.example/p?q', ['Host', 'h.example'], false)), 'http://h.example/p');
  assert.equal(dpopProofHeader(ctx), 'p1');
  assert.equal(dpopProofHeader(fakeCtx('/', ['dpop', 'a', 'DPOP', 'b'], false)), undefined, 'repeated');
  assert.equal(dpopProofHeader(fakeCtx('/', ['Host', 'h'], false)), undefined, 'absent');
});

function fakeCtx(url: string, rawHeaders: string[], secure: boolean): RequestContext {
  const req = { url, rawHeaders } as unknown as IncomingMessage;
  const ctx = new RequestContext(req, {} as ServerResponse, 'main', secure, 0);
  const host = rawHeaders[rawHeaders.findIndex((h, i) => i % 2 === 0 && h.toLowerCase() === 'host') + 1] ?? '';
  ctx.plan = { fwd: [], host, xff: undefined, via: undefined, peerTrusted: false, bodyLen: 0, maxBody: 0, upgrade: undefined };
  return ctx;
}

