// DPoP end to end: a JWT route with `dpop: allowed`, tokens bound to a key (cnf.jkt), proofs sent with
// them. In process (replay, other URL, other method); in a 2-worker cluster with the memory store (the
// primary owns the jti cache: the proof is accepted once whichever worker gets it); and across two
// gateway processes sharing Redis.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { Client } from 'undici';
import { SignJWT, generateKeyPair, exportJWK, calculateJwkThumbprint } from 'jose';
import type { GatewayConfig } from '../../src/config/schema.js';
import { startGateway, config, get } from '../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { startNodeTrio, type GatewayProcess, type NodeTrio } from '../helpers/process.js';

const idp = await generateKeyPair('ES256', { extractable: true });
const idpJwk = { ...(await exportJWK(idp.publicKey)), kid: 'idp-1' };
const client = await generateKeyPair('ES256', { extractable: true });
const clientJwk = await exportJWK(client.publicKey);
const jkt = await calculateJwkThumbprint(clientJwk, 'sha256');

const accessToken = await new SignJWT({ sub: 'alice', cnf: { jkt } })
  .setProtectedHeader({ alg: 'ES256', kid: 'idp-1', typ: 'at+jwt' })
  .setIssuer('https://idp.test').setAudience('api').setIssuedAt().setExpirationTime('10m')
  .sign(idp.privateKey);

function proof(method: string, htu: string): Promise<string> {
  return new SignJWT({ jti: randomUUID(), htm: method, htu, ath: createHash('sha256').update(accessToken).digest('base64url') })
    .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk: clientJwk })
    .setIssuedAt()
    .sign(client.privateKey);
}

const dpopHeaders = (p: string) => ({ authorization: `DPoP ${accessToken}`, dpop: p });

function gatewayConfig(upstreamUrl: string, extra: Partial<GatewayConfig> = {}): GatewayConfig {
  return config({
    identity: { issuers: { idp: { issuer: 'https://idp.test', keys: [{ jwk: idpJwk }], algorithms: ['ES256'], audiences: ['api'] } } },
    upstreams: { app: { targets: [{ url: upstreamUrl }] } },
    routes: [{ id: 'api', match: { pathPrefix: '/api' }, upstream: 'app', authentication: { methods: [{ jwt: { issuers: ['idp'], dpop: 'allowed' } }] } }],
    ...extra,
  });
}

let up: TestUpstream;
// The gateway processes: one with 2 cluster workers (memory store), two sharing Redis.
let nodes: NodeTrio;
before(async () => {
  up = await startUpstream('app');
  nodes = await startNodeTrio('dpop-e2e', (extra) => gatewayConfig(up.url, extra));
});
after(async () => {
  await nodes?.close();
  await up.close();
});

test('in process: a proof is accepted once; a replay, another URL or another method → 401 invalid_dpop_proof', async () => {
  const g = await startGateway(gatewayConfig(up.url));
  try {
    const url = `${g.base}/api/orders?page=1`;
    const p = await proof('GET', `${g.base}/api/orders`);
    assert.equal((await get(url, { headers: dpopHeaders(p) })).status, 200);

    const replay = await get(url, { headers: dpopHeaders(p) });
    assert.equal(replay.status, 401);
    assert.match(String(replay.headers['www-authenticate']), /^DPoP .*error="invalid_dpop_proof"/);
    assert.match(String(replay.headers['www-authenticate']), /error_description="the DPoP proof was already used"/);
    // only the scheme the client used carries the error: invalid_dpop_proof is no Bearer error
    assert.match(String(replay.headers['www-authenticate']), /, Bearer$/);

    const otherUrl = await get(url, { headers: dpopHeaders(await proof('GET', `${g.base}/api/other`)) });
    assert.equal(otherUrl.status, 401);
    assert.match(String(otherUrl.headers['www-authenticate']), /error_description="the DPoP proof is for another URI"/);

    const otherMethod = await get(url, { method: 'DELETE', headers: dpopHeaders(await proof('GET', `${g.base}/api/orders`)) });
    assert.equal(otherMethod.status, 401);
    assert.match(String(otherMethod.headers['www-authenticate']), /error_description="the DPoP proof is for another HTTP method"/);

    const noProof = await get(url, { headers: { authorization: `DPoP ${accessToken}` } });
    assert.equal(noProof.status, 401);
    assert.match(String(noProof.headers['www-authenticate']), /error="invalid_dpop_proof"/);
  } finally {
    await g.gw.close(0);
  }
});

/** One request on a fresh connection (the cluster primary hands connections to workers in turn). */
async function onNewConnection(origin: string, path: string, headers: Record<string, string>): Promise<number> {
  const c = new Client(origin);
  try {
    const r = await c.request({ method: 'GET', path, headers });
    await r.body.text();
    return r.statusCode;
  } finally {
    await c.close();
  }
}


const replayRefusals = (p: GatewayProcess) => p.lines.filter((l) => l.event === 'security' && l.reason === 'dpop-replay');

test('cluster (2 workers, memory store): the same proof on four connections is accepted exactly once, refused by both workers', async () => {
  const { p, origin, pids } = nodes.cluster;
  const pr = await proof('GET', `${origin}/api/x`);
  const statuses: number[] = [];
  for (let i = 0; i < 4; i++) statuses.push(await onNewConnection(origin, '/api/x', dpopHeaders(pr)));
  assert.equal(statuses.filter((s) => s === 200).length, 1, `statuses ${statuses.join(',')}`);
  assert.equal(statuses.filter((s) => s === 401).length, 3);
  await p.waitFor(() => replayRefusals(p).length >= 3);
  // Both workers refused a replay and only one request was accepted: the worker that did not accept it
  // knew the jti from the primary's store.
  assert.deepEqual(new Set(replayRefusals(p).map((l) => l.pid)), new Set(pids));
});

test('two gateway processes sharing state: redis: the same proof is accepted by exactly one', async () => {
  const [a, b] = [nodes.redisA, nodes.redisB];
  // The gateways listen on different ports, so each needs a proof for its own URI; both proofs carry the
  // same jti and key: the replay cache (key: jkt + jti) in Redis lets exactly one through.
  const jti = randomUUID();
  const signed = (origin: string) => new SignJWT({ jti, htm: 'GET', htu: `${origin}/api/x`, ath: createHash('sha256').update(accessToken).digest('base64url') })
    .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk: clientJwk }).setIssuedAt().sign(client.privateKey);
  const [pa, pb] = await Promise.all([signed(a.origin), signed(b.origin)]);
  const statuses = await Promise.all([onNewConnection(a.origin, '/api/x', dpopHeaders(pa)), onNewConnection(b.origin, '/api/x', dpopHeaders(pb))]);
  assert.deepEqual([...statuses].sort(), [200, 401]);
  const refuser = statuses[0] === 401 ? a.p : b.p;
  await refuser.waitFor((l) => l.event === 'security' && l.reason === 'dpop-replay');
  assert.equal(replayRefusals(a.p).length + replayRefusals(b.p).length, 1);
});
