// Purging cached responses: the admin call on the status listener (prefix, exact key with its Vary
// variants, refusals) and `portcullis cache purge` (the real CLI, with -c FILE and with --url).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Gateway } from '../../src/gateway/gateway.js';
import { adminTokenMatches, resolveAdminToken } from '../../src/status/status-server.js';
import type { SecurityEvent } from '../../src/observability/security-events.js';
import { config, get, startGateway } from '../helpers/gateway.js';
import { runCli } from '../helpers/keys.js';
import { startCacheUpstream, type CacheUpstream } from './upstream.js';
import { tempDir, removeTempDir } from '../helpers/tmp.js';

let up: CacheUpstream;
let gw: Gateway;
let base: string;
let status: string;
let dir: string;
const TOKEN = 'admin-token-0123456789-abcdefghijklmnop';
const events: SecurityEvent[] = [];

before(async () => {
  dir = tempDir('portcullis-cache-purge-');
  up = await startCacheUpstream();
  const g = await startGateway(config({
    server: { status: { port: 0, adminToken: TOKEN } },
    upstreams: { u: { targets: [{ url: up.url }] } },
    routes: [{ id: 'pub', match: { pathPrefix: '/' }, upstream: 'u', cache: { public: true } }],
  }), { status: true });
  gw = g.gw;
  gw.events.subscribe((e) => events.push(e));
  base = g.base;
  status = `http://127.0.0.1:${gw.statusAddress()!.port}`;
});

after(async () => {
  await gw.close(0);
  await up.close();
  await removeTempDir(dir);
});

const CC = 'cc=max-age%3D60';
const JSON_AUTH = { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` };
const purge = (body: unknown, headers: Record<string, string> = JSON_AUTH) =>
  get(`${status}/admin/cache/purge`, { method: 'POST', headers, body: JSON.stringify(body) });
const isHit = async (path: string, headers?: Record<string, string>) => String((await get(`${base}${path}`, { headers })).headers['cache-status']).includes('hit');

test('admin purge by prefix drops exactly the matching keys', async () => {
  for (const p of ['/products/1', '/products/2', '/orders/1']) await get(`${base}${p}?${CC}`);
  assert.ok(await isHit(`/products/1?${CC}`));
  const r = await purge({ prefix: '/products' });
  assert.equal(r.status, 200);
  assert.equal(r.json().purged, 2);
  assert.equal(await isHit(`/products/1?${CC}`), false);
  assert.equal(await isHit(`/products/2?${CC}`), false);
  assert.ok(await isHit(`/orders/1?${CC}`));
});

test('admin purge by exact key drops every Vary variant of it', async () => {
  const p = `/v?${CC}&vary=Accept-Language`;
  await get(`${base}${p}`, { headers: { 'accept-language': 'en' } });
  await get(`${base}${p}`, { headers: { 'accept-language': 'fr' } });
  assert.ok(await isHit(p, { 'accept-language': 'fr' }));
  // Key format: PATH?QUERY HOST ROUTE SCOPE (docs/caching.md)
  const key = `/v?${CC}&vary=Accept-Language 127.0.0.1:${new URL(base).port} pub *`;
  const r = await purge({ key });
  assert.equal(r.json().purged, 2);
  assert.equal(await isHit(p, { 'accept-language': 'en' }), false);
  assert.equal(await isHit(p, { 'accept-language': 'fr' }), false);
});

test('admin purge refuses anything but a JSON POST with one of key or prefix', async () => {
  assert.equal((await get(`${status}/admin/cache/purge`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 405);
  assert.equal((await purge({ prefix: '/' }, { ...JSON_AUTH, 'content-type': 'text/plain' })).status, 415);
  assert.equal((await purge({})).status, 400);
  assert.equal((await purge({ key: 'a', prefix: 'b' })).status, 400);
  assert.equal((await purge({ prefix: '' })).status, 400);
  assert.equal((await get(`${status}/admin/cache/purge`, { method: 'POST', headers: JSON_AUTH, body: '{' })).status, 400);
  assert.equal((await get(`${status}/admin/cache/purge`, { method: 'POST', headers: JSON_AUTH, body: 'x'.repeat(5000) })).status, 413);
});

test('admin purge needs the admin token: none → 401, wrong → 401 (security events), right → purged', async () => {
  await get(`${base}/tok/a?${CC}`);
  assert.ok(await isHit(`/tok/a?${CC}`));
  const before = events.length;
  const none = await purge({ prefix: '/tok' }, { 'content-type': 'application/json' });
  assert.equal(none.status, 401);
  assert.match(String(none.headers['www-authenticate']), /^Bearer realm=/);
  for (const authorization of [`Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, `Bearer x`, `Basic ${Buffer.from(`a:${TOKEN}`).toString('base64')}`, TOKEN, `Bearer ${TOKEN} extra`]) {
    const r = await purge({ prefix: '/tok' }, { 'content-type': 'application/json', authorization });
    assert.equal(r.status, 401, authorization);
    assert.ok(!r.body.includes(TOKEN), 'the token is not echoed');
  }
  // the GET of a wrong-token caller learns nothing about the method either
  assert.equal((await get(`${status}/admin/cache/purge`)).status, 401);
  assert.ok(await isHit(`/tok/a?${CC}`), 'nothing was purged');
  assert.deepEqual(events.slice(before).map((e) => `${e.type}/${e.reason}`), [
    'admin/admin-token-missing', ...Array(6).fill('admin/admin-token-invalid'), 'admin/admin-token-missing',
  ]);
  const ok = await purge({ prefix: '/tok' }, { 'content-type': 'application/json', authorization: `bearer  ${TOKEN}` });
  assert.equal(ok.status, 200);
  assert.equal(ok.json().purged, 1);
  assert.equal(await isHit(`/tok/a?${CC}`), false);
  // health and readiness stay open
  assert.equal((await get(`${status}/healthz`)).status, 200);
});

test('without a configured token the admin endpoint is disabled (403), even with some Authorization', async () => {
  const saved = process.env.PORTCULLIS_ADMIN_TOKEN;
  delete process.env.PORTCULLIS_ADMIN_TOKEN;
  const g = await startGateway(config({
    server: { status: { port: 0 } },
    routes: [{ id: 'r', match: { pathPrefix: '/' }, respond: { status: 200 } }],
  }), { status: true });
  try {
    const url = `http://127.0.0.1:${g.gw.statusAddress()!.port}/admin/cache/purge`;
    const r = await get(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer ' }, body: '{"prefix":"/"}' });
    assert.equal(r.status, 403);
    assert.match(r.json<{ status: string }>().status, /disabled.*adminToken.*PORTCULLIS_ADMIN_TOKEN/);
    // PORTCULLIS_ADMIN_TOKEN enables it (read per call); a too-short one does not
    process.env.PORTCULLIS_ADMIN_TOKEN = 'short';
    assert.equal((await get(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer short' }, body: '{"prefix":"/"}' })).status, 403);
    process.env.PORTCULLIS_ADMIN_TOKEN = TOKEN;
    assert.equal((await get(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer wrong' }, body: '{"prefix":"/"}' })).status, 401);
    // authorized; no route caches here → 404 from the purge itself
    assert.equal((await get(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, body: '{"prefix":"/"}' })).status, 404);
  } finally {
    if (saved === undefined) delete process.env.PORTCULLIS_ADMIN_TOKEN; else process.env.PORTCULLIS_ADMIN_TOKEN = saved;
    await g.gw.close(0);
  }
});

test('unit: token resolution and the constant-time compare', () => {
  assert.equal(resolveAdminToken(undefined, {}), undefined);
  assert.equal(resolveAdminToken(undefined, { PORTCULLIS_ADMIN_TOKEN: 'x'.repeat(31) }), undefined);
  assert.equal(resolveAdminToken(undefined, { PORTCULLIS_ADMIN_TOKEN: TOKEN }), TOKEN);
  assert.equal(resolveAdminToken('c'.repeat(32), { PORTCULLIS_ADMIN_TOKEN: TOKEN }), 'c'.repeat(32), 'config first');
  assert.equal(adminTokenMatches(`Bearer ${TOKEN}`, TOKEN), true);
  assert.equal(adminTokenMatches(`Bearer ${TOKEN}`, TOKEN + 'x'), false);
  assert.equal(adminTokenMatches(undefined, TOKEN), false);
  assert.equal(adminTokenMatches('Bearer', TOKEN), false);
  // a value whose SHA-256 is that of '' must not slip through the malformed-header branch
  assert.equal(adminTokenMatches('Token abc', ''), false);
});

test('portcullis cache purge: with --url and with -c FILE', async () => {
  await get(`${base}/cli/a?${CC}`);
  await get(`${base}/cli/b?${CC}`);
  const noToken = await runCli(['cache', 'purge', '--prefix', '/cli/a', '--url', status], { env: { PORTCULLIS_ADMIN_TOKEN: '' } });
  assert.notEqual(noToken.code, 0);
  assert.match(noToken.stderr, /no admin token/);
  const wrong = await runCli(['cache', 'purge', '--prefix', '/cli/a', '--url', status], { env: { PORTCULLIS_ADMIN_TOKEN: 'w'.repeat(40) } });
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /purge failed \(401\)/);
  const r1 = await runCli(['cache', 'purge', '--prefix', '/cli/a', '--url', status], { env: { PORTCULLIS_ADMIN_TOKEN: TOKEN } });
  assert.equal(r1.code, 0, r1.stderr);
  assert.match(r1.stdout, /purged 1 cached response\b/);
  assert.equal(await isHit(`/cli/a?${CC}`), false);
  assert.ok(await isHit(`/cli/b?${CC}`));

  const file = join(dir, 'gw.yaml');
  writeFileSync(file, [
    'listeners: [{ name: main, port: 0 }]',
    `server: { status: { address: 127.0.0.1, port: ${gw.statusAddress()!.port}, adminToken: "\${PURGE_TEST_TOKEN}" } }`,
    'routes: [{ id: r, match: { pathPrefix: / }, respond: { status: 200 } }]',
  ].join('\n'));
  const r2 = await runCli(['cache', 'purge', '--prefix', '/cli/', '-c', file, '--json'], { env: { PURGE_TEST_TOKEN: TOKEN, PORTCULLIS_ADMIN_TOKEN: '' } });
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(JSON.parse(r2.stdout).purged, 2, '/cli/a was stored again by the check above, and /cli/b');
  assert.equal(await isHit(`/cli/b?${CC}`), false);

  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, `${TOKEN}\n`);
  await get(`${base}/cli/c?${CC}`);
  const r3 = await runCli(['cache', 'purge', '--prefix', '/cli/c', '--url', status, '--token-file', tokenFile], { env: { PORTCULLIS_ADMIN_TOKEN: '' } });
  assert.equal(r3.code, 0, r3.stderr);
  assert.match(r3.stdout, /purged 1 cached response\b/);

  const down = await runCli(['cache', 'purge', '--prefix', '/', '--url', 'http://127.0.0.1:1'], { env: { PORTCULLIS_ADMIN_TOKEN: TOKEN } });
  assert.equal(down.code, 1);
  assert.match(down.stderr, /cannot reach/);
});
