// API keys end to end through a running gateway with a SQLite key store and configured keys: the
// legitimate paths (header, Authorization: ApiKey, opted-in query parameter, rotation with overlap) and
// the attacks (revoked while running, expired, disabled, unknown, wrong client IP, wrong Origin, key in a
// query string that is not allowed). The upstream never sees a key; neither does the access log.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteKeyStore } from '../../src/identity/api-keys/sqlite.js';
import { generateApiKey, hashApiKey, keyHint } from '../../src/identity/api-keys/format.js';
import type { KeyStore, NewKey } from '../../src/identity/api-keys/store.js';
import { SecurityEventBus, type SecurityEvent } from '../../src/observability/security-events.js';
import type { Gateway } from '../../src/gateway/gateway.js';
import type { GatewayConfig } from '../../src/config/schema.js';
import { startUpstream, type TestUpstream, type EchoReply } from '../helpers/upstream.js';
import { config, get, startGateway } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';
import { captureLogger } from '../helpers/servers.js';
import { PEPPER } from '../helpers/keys.js';

let dir: string;
let up: TestUpstream;
let store: KeyStore;
let gw: Gateway;
let base: string;
const events: SecurityEvent[] = [];
const usedKeys: string[] = [];
const cfgKey = generateApiKey();
let accessLogFile: string;
let gwConfig: GatewayConfig;
const cap = captureLogger();

async function storeKey(extra: Partial<NewKey> = {}, consumerId = 'acme'): Promise<{ key: string; id: string }> {
  const key = generateApiKey();
  usedKeys.push(key);
  const row = await store.createKey({ consumerId, hash: hashApiKey(PEPPER, key), hint: keyHint(key), ...extra });
  return { key, id: row.id };
}

/** Waits until the gateway's index has the key (the store is polled every refreshMs). */
async function visible(key: string): Promise<void> {
  await waitFor(async () => (await get(`${base}/api/x`, { headers: { 'x-api-key': key } })).status !== 401, { timeoutMs: 2000, what: 'key in the gateway index' });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'portcullis-keys-gw-'));
  up = await startUpstream('a');
  const db = join(dir, 'keys.db');
  store = openSqliteKeyStore(db);
  await store.createConsumer({ id: 'acme', roles: ['ops'], scopes: ['orders:read'], metadata: { plan: 'gold' } });
  usedKeys.push(cfgKey);
  accessLogFile = join(dir, 'access.log');
  const bus = new SecurityEventBus();
  bus.subscribe((e) => events.push(e));
  gwConfig = config({
    server: { trustedProxies: ['127.0.0.1'] },
    upstreams: { a: { targets: [{ url: up.url }] } },
    accessLog: { destination: accessLogFile },
    identity: {
      pepper: PEPPER,
      keyStore: { type: 'sqlite', path: db },
      consumers: [{ id: 'partner', roles: ['partner'], apiKeys: [{ id: 'cfg-key', hash: hashApiKey(PEPPER, cfgKey) }] }],
    },
    routes: [
      { id: 'api', match: { pathPrefix: '/api' }, upstream: 'a', authentication: { methods: [{ apiKey: {} }], realm: 'api', forward: { consumer: 'X-Consumer', scopes: 'X-Scopes' } } },
      { id: 'query', match: { pathPrefix: '/q' }, upstream: 'a', authentication: { methods: [{ apiKey: { queryParam: 'access_key' } }] } },
    ],
  });
  const g = await startGateway(gwConfig, { accessLog: true, events: bus, logger: cap.logger });
  gw = g.gw;
  base = g.base;
});

after(async () => {
  await gw.close(0);
  await store.close();
  await up.close();
  rmSync(dir, { recursive: true, force: true });
});

const lastSeen = (): EchoReply => up.seen[up.seen.length - 1]!;

test('valid key in X-API-Key and in Authorization: ApiKey; the upstream gets the identity, not the key', async () => {
  const { key, id } = await storeKey({ scopes: ['orders:write'] });
  await visible(key);
  const r = await get(`${base}/api/orders`, { headers: { 'X-API-Key': key } });
  assert.equal(r.status, 200);
  const seen = lastSeen();
  assert.equal(seen.headers['x-api-key'], undefined);
  assert.equal(seen.headers['x-consumer'], 'acme');
  assert.equal(seen.headers['x-scopes'], 'orders:write');
  assert.ok(!JSON.stringify(seen).includes(key));

  const a = await get(`${base}/api/orders`, { headers: { authorization: `ApiKey ${cfgKey}` } });
  assert.equal(a.status, 200);
  assert.equal(lastSeen().headers.authorization, undefined);
  assert.equal(lastSeen().headers['x-consumer'], 'partner');
  assert.ok(id.startsWith('key_'));
});

test('identity headers cannot be spoofed: a client-sent X-Consumer / X-Scopes is replaced on the route and dropped on every other route', async () => {
  const { key } = await storeKey({ scopes: ['orders:read'] });
  await visible(key);
  const spoof = { 'X-Consumer': 'admin', 'x-scopes': 'orders:write admin' };
  const r = await get(`${base}/api/orders`, { headers: { ...spoof, 'X-API-Key': key } });
  assert.equal(r.status, 200);
  assert.equal(lastSeen().headers['x-consumer'], 'acme', 'only the verified consumer, no client copy');
  assert.equal(lastSeen().headers['x-scopes'], 'orders:read');
  // a route that forwards nothing still never passes the header a backend may trust
  const q = await get(`${base}/q/x?access_key=${key}`, { headers: spoof });
  assert.equal(q.status, 200);
  assert.equal(lastSeen().headers['x-consumer'], undefined);
  assert.equal(lastSeen().headers['x-scopes'], undefined);
});

test('query parameter only where opted in: accepted and stripped on /q, refused with invalid_request on /api', async () => {
  const { key } = await storeKey();
  await visible(key);
  const ok = await get(`${base}/q/items?page=2&access_key=${key}`);
  assert.equal(ok.status, 200);
  assert.equal(lastSeen().url, '/q/items?page=2');

  const before = up.seen.length;
  const r = await get(`${base}/api/items?api_key=${key}`);
  assert.equal(r.status, 401);
  assert.match(String(r.headers['www-authenticate']), /^ApiKey realm="api", error="invalid_request"/);
  assert.match(r.json<{ detail: string }>().detail, /X-API-Key header, not in the URL/);
  assert.equal(up.seen.length, before, 'nothing reached the upstream');
  assert.equal(events.at(-1)?.reason, 'api-key-in-query-not-allowed');
});

test('attacks: unknown, disabled, expired and malformed keys get the same answer; reasons differ in events', async () => {
  const disabled = await storeKey({ enabled: false });
  const expired = await storeKey({ expiresAt: Date.now() - 1000 });
  const probe = await storeKey();
  await visible(probe.key);
  const unknown = generateApiKey();
  usedKeys.push(unknown);
  const bodies: string[] = [];
  const reasons: string[] = [];
  for (const key of [unknown, disabled.key, expired.key, 'pcl_short']) {
    const r = await get(`${base}/api/x`, { headers: { 'x-api-key': key } });
    assert.equal(r.status, 401);
    const p = r.json<{ detail: string; title: string; type: string }>();
    bodies.push(JSON.stringify([p.type, p.title, p.detail, r.headers['www-authenticate']]));
    reasons.push(events.at(-1)!.reason);
  }
  assert.equal(new Set(bodies).size, 1, `responses differ: ${bodies.join('\n')}`);
  assert.deepEqual(reasons, ['api-key-unknown', 'api-key-disabled', 'api-key-expired', 'api-key-malformed']);
  assert.equal(events.at(-2)?.credentialId, expired.id);
});

test('attack: a key revoked while the gateway runs is refused within one second', async (t) => {
  const { key, id } = await storeKey();
  await visible(key);
  assert.equal((await get(`${base}/api/x`, { headers: { 'x-api-key': key } })).status, 200);
  const start = performance.now();
  await store.revokeKey(id);
  await waitFor(async () => (await get(`${base}/api/x`, { headers: { 'x-api-key': key } })).status === 401, { timeoutMs: 1000, intervalMs: 10, what: 'revoked key refused' });
  const ms = performance.now() - start;
  t.diagnostic(`revocation effective after ${ms.toFixed(0)} ms (refreshMs 250)`);
  const e = events.at(-1)!;
  assert.deepEqual([e.reason, e.consumer, e.credentialId, e.method], ['api-key-revoked', 'acme', id, 'api-key']);
});

test('attack: wrong client IP → 403; the same key from an allowed address (via a trusted proxy) passes', async () => {
  const { key, id } = await storeKey({ cidrs: ['10.0.0.0/8'] });
  await waitFor(async () => (await get(`${base}/api/x`, { headers: { 'x-api-key': key } })).status === 403, { timeoutMs: 2000, what: 'key loaded' });
  const e = events.at(-1)!;
  assert.deepEqual([e.reason, e.consumer, e.credentialId, e.clientIp], ['api-key-ip-not-allowed', 'acme', id, '127.0.0.1']);
  const spoofed = await get(`${base}/api/x`, { headers: { 'x-api-key': key, 'x-forwarded-for': '10.1.2.3' } });
  assert.equal(spoofed.status, 200, 'the trusted proxy (127.0.0.1) vouches for 10.1.2.3');
  const outside = await get(`${base}/api/x`, { headers: { 'x-api-key': key, 'x-forwarded-for': '192.0.2.1' } });
  assert.equal(outside.status, 403);
});

test('attack: an Origin not allowed for a browser key → 403; the allowed origin and no Origin pass', async () => {
  const { key } = await storeKey({ origins: ['https://app.example.com'] });
  await visible(key);
  assert.equal((await get(`${base}/api/x`, { headers: { 'x-api-key': key, origin: 'https://evil.example' } })).status, 403);
  assert.equal(events.at(-1)!.reason, 'api-key-origin-not-allowed');
  assert.equal((await get(`${base}/api/x`, { headers: { 'x-api-key': key, origin: 'https://app.example.com' } })).status, 200);
  assert.equal((await get(`${base}/api/x`, { headers: { 'x-api-key': key } })).status, 200);
});

test('rotation: old and new keys both work during the overlap, then only the new one', async () => {
  const old = await storeKey({ scopes: ['orders:read'] });
  await visible(old.key);
  const next = generateApiKey();
  usedKeys.push(next);
  const { created } = await store.rotateKey(old.id, { consumerId: 'acme', hash: hashApiKey(PEPPER, next), hint: keyHint(next), scopes: ['orders:read'] }, Date.now() + 700);
  await visible(next);
  assert.equal((await get(`${base}/api/x`, { headers: { 'x-api-key': old.key } })).status, 200, 'old key still valid during the overlap');
  assert.equal((await get(`${base}/api/x`, { headers: { 'x-api-key': next } })).status, 200);
  await waitFor(async () => (await get(`${base}/api/x`, { headers: { 'x-api-key': old.key } })).status === 401, { timeoutMs: 2000, what: 'old key expired' });
  assert.equal(events.at(-1)!.reason, 'api-key-expired');
  assert.equal((await get(`${base}/api/x`, { headers: { 'x-api-key': next } })).status, 200);
  assert.equal(created.rotatedFrom, old.id);
});

test('a reload keeps the loaded key store (same configuration): keys keep working without a gap', async () => {
  const { key } = await storeKey();
  await visible(key);
  const before = gw.runtime.services;
  await gw.reload(structuredClone(gwConfig));
  assert.notEqual(gw.runtime.services, before);
  assert.equal(cap.lines.filter((l) => l.msg === 'API key store loaded').length, 1, 'the store was not reopened');
  assert.equal((await get(`${base}/api/x`, { headers: { 'x-api-key': key } })).status, 200);
  assert.equal((await get(`${base}/api/x`, { headers: { 'x-api-key': cfgKey } })).status, 200);
});

test('the access log and the security events never contain a key', async () => {
  // every request above has been logged once the last one's line is in the file
  const last = await get(`${base}/api/last`, { headers: { 'x-api-key': cfgKey } });
  const rid = String(last.headers['x-request-id']);
  const text = await waitFor(() => { try { const t = readFileSync(accessLogFile, 'utf8'); return t.includes(rid) ? t : undefined; } catch { return undefined; } }, { timeoutMs: 3000, what: 'access log flush' });
  assert.ok(text.includes('"block_reason"'), 'refusals are logged');
  const ev = JSON.stringify(events);
  for (const k of usedKeys) {
    assert.ok(!text.includes(k), 'key in the access log');
    assert.ok(!text.includes(k.slice(4, 20)), 'part of a key in the access log');
    assert.ok(!ev.includes(k), 'key in a security event');
  }
});
