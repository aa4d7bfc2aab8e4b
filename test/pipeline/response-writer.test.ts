// The response writer: every answer of a routed request (proxied, `respond`, a stage's refusal, an
// upstream 5xx replaced by a problem, a cache hit) runs the route's onResponse stages exactly once and
// carries the gateway's own headers; an answer before routing runs none (there is no route yet).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, config, get, type SimpleResponse } from '../helpers/gateway.js';
import { startScripted, rawRequest } from '../helpers/servers.js';
import { testStage, withBlocks } from '../helpers/stages.js';
import { STAGES } from '../../src/pipeline/registry.js';

/** onResponse calls per request id */
const calls = new Map<string, number>();
const counter = testStage({
  name: 'test-count-responses', order: 5, configKey: 'testCount', always: true,
  compile: () => ({ onResponse: (ctx) => { calls.set(ctx.id, (calls.get(ctx.id) ?? 0) + 1); } }),
});
const refuser = testStage({
  name: 'test-refuse', order: 6, configKey: 'testRefuse',
  compile: () => ({ onRequest: () => ({ status: 403, code: 'refused-by-test', detail: 'no' }) }),
});

let hits = 0;
const up = await startScripted('w', (req, res) => {
  hits++;
  if (req.url?.startsWith('/api/fail')) { res.writeHead(502, { 'content-type': 'text/plain' }); res.end('stack trace at internal.js:1'); return; }
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=30' });
  res.end(JSON.stringify({ n: hits }));
});
const { gw, base, port } = await startGateway(config({
  upstreams: { up: { targets: [{ url: up.url }] } },
  routes: [
    { id: 'cached', match: { pathPrefix: '/cached' }, upstream: 'up', cache: { ttlSeconds: 30, public: true } },
    { id: 'respond', match: { pathPrefix: '/gone' }, respond: { status: 404, body: 'nothing here', contentType: 'text/plain' } },
    withBlocks({ id: 'refused', match: { pathPrefix: '/refused' }, upstream: 'up' }, { testRefuse: {} }),
    { id: 'proxied', match: { pathPrefix: '/api' }, upstream: 'up' },
  ],
}), { stages: [...STAGES, counter, refuser] });
after(async () => { await gw.close(0); await up.close(); });

function idOf(r: SimpleResponse): string {
  const id = r.headers['x-request-id'];
  assert.equal(typeof id, 'string', 'the request id header is on every answer');
  return id as string;
}
function gatewayHeaders(r: SimpleResponse): void {
  assert.equal(r.headers['x-content-type-options'], 'nosniff');
  idOf(r);
}

test('a proxied response: onResponse exactly once', async () => {
  const r = await get(`${base}/api/x`);
  assert.equal(r.status, 200);
  gatewayHeaders(r);
  assert.equal(calls.get(idOf(r)), 1);
});

test("a route's `respond` 404: onResponse exactly once", async () => {
  const r = await get(`${base}/gone`);
  assert.equal(r.status, 404);
  assert.equal(r.body, 'nothing here');
  gatewayHeaders(r);
  assert.equal(calls.get(idOf(r)), 1);
});

test("a stage's refusal (problem): onResponse exactly once", async () => {
  const r = await get(`${base}/refused/x`);
  assert.equal(r.status, 403);
  assert.equal(r.headers['content-type'], 'application/problem+json');
  gatewayHeaders(r);
  assert.equal(calls.get(idOf(r)), 1);
});

test('an upstream 502 replaced by a problem: onResponse exactly once, nothing of the upstream body', async () => {
  const r = await get(`${base}/api/fail`);
  assert.equal(r.status, 502);
  assert.equal(r.headers['content-type'], 'application/problem+json');
  assert.ok(!r.body.includes('stack trace'));
  gatewayHeaders(r);
  assert.equal(calls.get(idOf(r)), 1);
});

test('a cache miss then a cache hit: onResponse exactly once each', async () => {
  const before = hits;
  const miss = await get(`${base}/cached/item`);
  const hit = await get(`${base}/cached/item`);
  assert.equal(miss.status, 200);
  assert.equal(hit.status, 200);
  assert.equal(hits, before + 1, 'the second request was answered from the cache');
  assert.equal(hit.body, miss.body);
  gatewayHeaders(miss);
  gatewayHeaders(hit);
  assert.equal(calls.get(idOf(miss)), 1);
  assert.equal(calls.get(idOf(hit)), 1);
});

test('a refusal before routing (no route; bad framing): no onResponse at all, gateway headers still there', async () => {
  const size = calls.size;
  const r = await get(`${base}/no/such/route`);
  assert.equal(r.status, 404);
  gatewayHeaders(r);
  assert.equal(calls.get(idOf(r)), undefined);
  const bad = await rawRequest(port, 'TRACE', '/api/x');
  assert.equal(bad.status, 405);
  assert.equal(bad.headers['x-content-type-options']?.[0], 'nosniff');
  assert.equal(typeof bad.headers['x-request-id']?.[0], 'string');
  assert.equal(calls.get(bad.headers['x-request-id']![0]!), undefined);
  assert.equal(calls.size, size);
});
