// Purging cached responses: the admin call on the status listener (prefix, exact key with its Vary
// variants, refusals) and `portcullis cache purge` (the real CLI, with -c FILE and with --url).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Gateway } from '../../src/gateway/gateway.js';
import { config, get, startGateway } from '../helpers/gateway.js';
import { runCli } from '../helpers/keys.js';
import { startCacheUpstream, type CacheUpstream } from './upstream.js';
import { tempDir, removeTempDir } from '../helpers/tmp.js';

let up: CacheUpstream;
let gw: Gateway;
let base: string;
let status: string;
let dir: string;

before(async () => {
  dir = tempDir('portcullis-cache-purge-');
  up = await startCacheUpstream();
  const g = await startGateway(config({
    server: { status: { port: 0 } },
    upstreams: { u: { targets: [{ url: up.url }] } },
    routes: [{ id: 'pub', match: { pathPrefix: '/' }, upstream: 'u', cache: { public: true } }],
  }), { status: true });
  gw = g.gw;
  base = g.base;
  status = `http://127.0.0.1:${gw.statusAddress()!.port}`;
});

after(async () => {
  await gw.close(0);
  await up.close();
  await removeTempDir(dir);
});

const CC = 'cc=max-age%3D60';
const purge = (body: unknown, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
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
  assert.equal((await get(`${status}/admin/cache/purge`)).status, 405);
  assert.equal((await purge({ prefix: '/' }, { 'content-type': 'text/plain' })).status, 415);
  assert.equal((await purge({})).status, 400);
  assert.equal((await purge({ key: 'a', prefix: 'b' })).status, 400);
  assert.equal((await purge({ prefix: '' })).status, 400);
  assert.equal((await get(`${status}/admin/cache/purge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' })).status, 400);
  assert.equal((await get(`${status}/admin/cache/purge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'x'.repeat(5000) })).status, 413);
});

test('portcullis cache purge: with --url and with -c FILE', async () => {
  await get(`${base}/cli/a?${CC}`);
  await get(`${base}/cli/b?${CC}`);
  const r1 = await runCli(['cache', 'purge', '--prefix', '/cli/a', '--url', status]);
  assert.equal(r1.code, 0, r1.stderr);
  assert.match(r1.stdout, /purged 1 cached response\b/);
  assert.equal(await isHit(`/cli/a?${CC}`), false);
  assert.ok(await isHit(`/cli/b?${CC}`));

  const file = join(dir, 'gw.yaml');
  writeFileSync(file, [
    'listeners: [{ name: main, port: 0 }]',
    `server: { status: { address: 127.0.0.1, port: ${gw.statusAddress()!.port} } }`,
    'routes: [{ id: r, match: { pathPrefix: / }, respond: { status: 200 } }]',
  ].join('\n'));
  const r2 = await runCli(['cache', 'purge', '--prefix', '/cli/', '-c', file, '--json']);
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(JSON.parse(r2.stdout).purged, 2, '/cli/a was stored again by the check above, and /cli/b');
  assert.equal(await isHit(`/cli/b?${CC}`), false);

  const down = await runCli(['cache', 'purge', '--prefix', '/', '--url', 'http://127.0.0.1:1']);
  assert.equal(down.code, 1);
  assert.match(down.stderr, /cannot reach/);
});
