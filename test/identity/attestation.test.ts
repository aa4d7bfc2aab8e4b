// App attestation (Approov style): the stage compiled on its own, and end to end through a gateway with a
// route that has only `attestation:` (no authentication stage).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SignJWT, generateKeyPair, exportJWK, type CryptoKey } from 'jose';
import { attestationStage } from '../../src/stages/attestation/attestation.js';
import type { AttestationConfig } from '../../src/stages/attestation/schema.js';
import type { IdentityConfig } from '../../src/identity/schema.js';
import { RequestContext } from '../../src/pipeline/context.js';
import { SecurityEventBus, type SecurityEvent } from '../../src/observability/security-events.js';
import { testCompileEnv } from '../helpers/compile-env.js';
import { startGateway, config, get } from '../helpers/gateway.js';
import { startUpstream, type TestUpstream, type EchoReply } from '../helpers/upstream.js';

const secretBytes = randomBytes(32);
const secret = secretBytes.toString('base64'); // Approov hands out the secret in standard base64
const rsa = await generateKeyPair('RS256', { extractable: true });
const ec = await generateKeyPair('ES256', { extractable: true });
const ecJwk = { ...(await exportJWK(ec.publicKey)), kid: 'att-1', alg: 'ES256' };

const now = () => Math.floor(Date.now() / 1000);
async function token(claims: Record<string, unknown> = {}, o: { exp?: number | null; iat?: number; key?: Uint8Array | CryptoKey; alg?: string; kid?: string } = {}): Promise<string> {
  const jwt = new SignJWT({ did: 'device-1', ...claims }).setProtectedHeader({ alg: o.alg ?? 'HS256', ...(o.kid ? { kid: o.kid } : {}) }).setIssuedAt(o.iat);
  if (o.exp !== null) jwt.setExpirationTime(o.exp ?? now() + 60);
  return jwt.sign(o.key ?? secretBytes);
}
const payHash = (authz: string, enc: 'base64' | 'base64url') => createHash('sha256').update(authz).digest(enc);

const identity: IdentityConfig = {
  attestation: {
    approov: { secret, algorithms: ['HS256'], maxLifetimeSec: 300, leewaySec: 5 },
    keyed: { keys: [{ jwk: ecJwk }], algorithms: ['ES256'], issuer: 'attester', audiences: ['api'] },
  },
};

// ---------------------------------------------------------------- unit: the compiled stage

async function compileStage(cfg: AttestationConfig, events = new SecurityEventBus(), route: Record<string, unknown> = {}) {
  const env = testCompileEnv({ identity, events, route: { attestation: cfg, ...route } });
  const stage = attestationStage.compile(cfg, env)!;
  await env.identity.services.ready();
  return stage;
}

function ctxWith(headers: string[]): RequestContext {
  const req = { url: '/x', rawHeaders: ['Host', 'api.example', ...headers] } as unknown as IncomingMessage;
  const ctx = new RequestContext(req, {} as ServerResponse, 'main', false, 0);
  ctx.id = 'req-1';
  ctx.clientIp = '192.0.2.1';
  ctx.plan = { fwd: [...headers], host: 'api.example', xff: undefined, via: undefined, peerTrusted: false, bodyLen: 0, maxBody: 0, upgrade: undefined };
  return ctx;
}

test('unit: a verified token is remembered: the repeat is answered synchronously from the cache', async () => {
  const stage = await compileStage({ verifier: 'approov' });
  const t = await token();
  const first = stage.onRequest!(ctxWith(['Attestation-Token', t]));
  assert.ok(first instanceof Promise, 'first sight: verified');
  assert.equal(await first, undefined);
  const ctx = ctxWith(['x-other', '1', 'attestation-token', t]);
  assert.equal(stage.onRequest!(ctx), undefined, 'cache hit: synchronous pass');
  assert.deepEqual(ctx.plan!.fwd, ['x-other', '1'], 'the token is not forwarded');
});

test('unit: a cache hit still checks the binding against this request', async () => {
  const stage = await compileStage({ verifier: 'approov', bindingClaim: 'pay' });
  const t = await token({ pay: payHash('Bearer alice', 'base64') });
  assert.equal(await stage.onRequest!(ctxWith(['Attestation-Token', t, 'Authorization', 'Bearer alice'])), undefined);
  const r = stage.onRequest!(ctxWith(['Attestation-Token', t, 'Authorization', 'Bearer mallory']));
  assert.equal((r as { code?: string }).code, 'attestation-invalid');
});

test('unit: two attestation headers are ambiguous and refused; required: false lets a missing token through', async () => {
  const events = new SecurityEventBus();
  const seen: SecurityEvent[] = [];
  events.subscribe((e) => seen.push(e));
  const t = await token();
  const stage = await compileStage({ verifier: 'approov' }, events);
  const r = await stage.onRequest!(ctxWith(['Attestation-Token', t, 'Attestation-Token', t]));
  assert.equal(r?.code, 'attestation-invalid');
  assert.equal(seen[0]?.reason, 'attestation-malformed');
  const monitor = await compileStage({ verifier: 'approov', required: false }, events);
  assert.equal(monitor.onRequest!(ctxWith([])), undefined);
  const bad = await monitor.onRequest!(ctxWith(['Attestation-Token', await token({}, { key: randomBytes(32) })]));
  assert.equal(bad?.code, 'attestation-invalid', 'an invalid token is refused even in monitor mode');
});

test('unit: static public keys (kid), issuer and audience', async () => {
  const events = new SecurityEventBus();
  const seen: string[] = [];
  events.subscribe((e) => seen.push(e.reason));
  const stage = await compileStage({ verifier: 'keyed' }, events);
  const ok = await token({ iss: 'attester', aud: 'api' }, { key: ec.privateKey, alg: 'ES256', kid: 'att-1' });
  assert.equal(await stage.onRequest!(ctxWith(['Attestation-Token', ok])), undefined);
  const otherAud = await token({ iss: 'attester', aud: 'web' }, { key: ec.privateKey, alg: 'ES256', kid: 'att-1' });
  assert.equal((await stage.onRequest!(ctxWith(['Attestation-Token', otherAud])))?.code, 'attestation-invalid');
  const unknownKid = await token({ iss: 'attester', aud: 'api' }, { key: ec.privateKey, alg: 'ES256', kid: 'nope' });
  assert.equal((await stage.onRequest!(ctxWith(['Attestation-Token', unknownKid])))?.code, 'attestation-invalid');
  const otherIss = await token({ iss: 'someone-else', aud: 'api' }, { key: ec.privateKey, alg: 'ES256', kid: 'att-1' });
  assert.equal((await stage.onRequest!(ctxWith(['Attestation-Token', otherIss])))?.code, 'attestation-invalid');
  const notYet = await token({ iss: 'attester', aud: 'api', nbf: Math.floor(Date.now() / 1000) + 3600 }, { key: ec.privateKey, alg: 'ES256', kid: 'att-1' });
  assert.equal((await stage.onRequest!(ctxWith(['Attestation-Token', notYet])))?.code, 'attestation-invalid');
  assert.equal(seen.length, 4);
  assert.deepEqual(seen.slice(0, 2), ['attestation-claims-invalid', 'attestation-unknown-key']);
});

test('unit: an unknown verifier is a compile error', () => {
  const env = testCompileEnv({ identity });
  assert.throws(() => attestationStage.compile({ verifier: 'nope' }, env), /no verifier "nope" under identity.attestation/);
});

// ---------------------------------------------------------------- end to end

let up: TestUpstream;
let base: string;
let close: () => Promise<void>;
const events = new SecurityEventBus();
const seen: SecurityEvent[] = [];
events.subscribe((e) => seen.push(e));

before(async () => {
  up = await startUpstream('app');
  const g = await startGateway(config({
    identity,
    upstreams: { app: { targets: [{ url: up.url }] } },
    routes: [
      { id: 'attested', match: { pathPrefix: '/api' }, upstream: 'app', attestation: { verifier: 'approov' } },
      { id: 'bound', match: { pathPrefix: '/bound' }, upstream: 'app', attestation: { verifier: 'approov', header: 'Approov-Token', bindingClaim: 'pay' } },
    ],
  }), { events });
  base = g.base;
  close = () => g.gw.close(0);
});
after(async () => { await close(); await up.close(); });

async function call(path: string, headers: Record<string, string>) {
  const from = seen.length;
  const r = await get(`${base}${path}`, { headers });
  return { r, events: seen.slice(from) };
}

function assertRefused(x: Awaited<ReturnType<typeof call>>, code: string, reason: string, route = 'attested'): void {
  assert.equal(x.r.status, 401);
  assert.equal(x.r.headers['content-type'], 'application/problem+json');
  const body = x.r.json<{ type: string; status: number }>();
  assert.equal(body.type, `https://portcullis.dev/problems/${code}`);
  assert.equal(x.events.length, 1);
  const e = x.events[0]!;
  assert.deepEqual({ type: e.type, reason: e.reason, route: e.route, credentialId: e.credentialId }, { type: 'attestation', reason, route, credentialId: 'approov' });
  assert.equal(e.clientIp, '127.0.0.1');
  assert.equal(e.requestId, x.r.headers['x-request-id']);
  assert.ok(!x.r.body.includes('eyJ'), 'no token in the problem body');
}

test('e2e: a valid token passes and is not forwarded upstream', async () => {
  const { r, events: ev } = await call('/api/orders', { 'attestation-token': await token() });
  assert.equal(r.status, 200);
  assert.equal(ev.length, 0);
  const echo = r.json<EchoReply>();
  assert.equal(echo.headers['attestation-token'], undefined);
});

test('e2e: missing token → 401 attestation-required, security event attestation-missing', async () => {
  assertRefused(await call('/api/orders', {}), 'attestation-required', 'attestation-missing');
});

test('e2e: expired token → 401 attestation-invalid (attestation-expired)', async () => {
  assertRefused(await call('/api/x', { 'attestation-token': await token({}, { exp: now() - 30 }) }), 'attestation-invalid', 'attestation-expired');
});

test('e2e: token issued in the future (iat beyond leewaySec) → attestation-not-yet-valid; within the leeway it passes', async () => {
  assertRefused(await call('/api/x', { 'attestation-token': await token({}, { iat: now() + 60, exp: now() + 120 }) }), 'attestation-invalid', 'attestation-not-yet-valid');
  const { r } = await call('/api/x', { 'attestation-token': await token({}, { iat: now() + 3 }) });
  assert.equal(r.status, 200);
});

test('e2e: long-lived token (exp beyond maxLifetimeSec) or none at all → refused', async () => {
  assertRefused(await call('/api/x', { 'attestation-token': await token({}, { exp: now() + 3600 }) }), 'attestation-invalid', 'attestation-lifetime-too-long');
  assertRefused(await call('/api/x', { 'attestation-token': await token({}, { exp: null }) }), 'attestation-invalid', 'attestation-no-expiry');
});

test('e2e: wrong signature → attestation-bad-signature', async () => {
  assertRefused(await call('/api/x', { 'attestation-token': await token({}, { key: randomBytes(32) }) }), 'attestation-invalid', 'attestation-bad-signature');
});

test('e2e: algorithm confusion: an RS256 or unsigned token against the HS256 verifier → attestation-alg-not-allowed', async () => {
  assertRefused(await call('/api/x', { 'attestation-token': await token({}, { key: rsa.privateKey, alg: 'RS256' }) }), 'attestation-invalid', 'attestation-alg-not-allowed');
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const none = `${b64({ alg: 'none' })}.${b64({ exp: now() + 60 })}.`;
  assertRefused(await call('/api/x', { 'attestation-token': none }), 'attestation-invalid', 'attestation-alg-not-allowed');
  assertRefused(await call('/api/x', { 'attestation-token': 'not-a-jwt' }), 'attestation-invalid', 'attestation-malformed');
});

test('e2e: binding: the pay claim must hash this request\'s Authorization value', async () => {
  const authz = 'Bearer eyJ.user-a.sig';
  // Approov's pay claim (standard base64) and the unpadded base64url form are both accepted
  for (const enc of ['base64', 'base64url'] as const) {
    const t = await token({ pay: payHash(authz, enc) });
    const ok = await call('/bound/x', { 'approov-token': t, authorization: authz });
    assert.equal(ok.r.status, 200, enc);
    assert.equal(ok.r.json<EchoReply>().headers['approov-token'], undefined);
    assert.equal(ok.r.json<EchoReply>().headers.authorization, authz, 'Authorization itself is untouched');
  }
  const t = await token({ pay: payHash(authz, 'base64') });
  assertRefused(await call('/bound/x', { 'approov-token': t, authorization: 'Bearer eyJ.user-b.sig' }), 'attestation-invalid', 'attestation-binding-mismatch', 'bound');
  assertRefused(await call('/bound/x', { 'approov-token': t }), 'attestation-invalid', 'attestation-binding-mismatch', 'bound');
  assertRefused(await call('/bound/x', { 'approov-token': await token(), authorization: authz }), 'attestation-invalid', 'attestation-binding-mismatch', 'bound');
});

test('e2e: keys from a JWKS URL; an unreachable JWKS fails closed with 503', async () => {
  const jwks = http.createServer((_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(JSON.stringify({ keys: [ecJwk] })); });
  await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
  const jwksUri = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks`;
  const down = http.createServer();
  await new Promise<void>((r) => down.listen(0, '127.0.0.1', r));
  const downUri = `http://127.0.0.1:${(down.address() as AddressInfo).port}/jwks`;
  await new Promise<void>((r) => down.close(() => r()));
  const g = await startGateway(config({
    identity: { attestation: { remote: { jwksUri, algorithms: ['ES256'] }, gone: { jwksUri: downUri, algorithms: ['ES256'] } } },
    upstreams: { app: { targets: [{ url: up.url }] } },
    routes: [
      { id: 'remote', match: { pathPrefix: '/remote' }, upstream: 'app', attestation: { verifier: 'remote' } },
      { id: 'gone', match: { pathPrefix: '/gone' }, upstream: 'app', attestation: { verifier: 'gone' } },
    ],
  }));
  try {
    const t = await token({}, { key: ec.privateKey, alg: 'ES256', kid: 'att-1' });
    assert.equal((await get(`${g.base}/remote/x`, { headers: { 'attestation-token': t } })).status, 200);
    const r = await get(`${g.base}/gone/x`, { headers: { 'attestation-token': t } });
    assert.equal(r.status, 503);
    assert.equal(r.json<{ type: string }>().type, 'https://portcullis.dev/problems/attestation-unavailable');
  } finally {
    await g.gw.close(0);
    jwks.closeAllConnections();
    await new Promise<void>((r) => jwks.close(() => r()));
  }
});
