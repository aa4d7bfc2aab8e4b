import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startUpstream } from '../helpers/upstream.js';
import { startGateway, config, get } from '../helpers/gateway.js';

const up = await startUpstream('a');
const { gw, base } = await startGateway(config({
  upstreams: { a: { targets: [{ url: up.url }] } },
  routes: [{ id: 'all', match: { pathPrefix: '/' }, upstream: 'a' }],
}));
after(async () => { await gw.close(0); await up.close(); });

test('proxies a GET and returns upstream body', async () => {
  const r = await get(`${base}/hello?x=1`);
  assert.equal(r.status, 200);
  const echo = r.json<{ url: string; headers: Record<string, string> }>();
  assert.equal(echo.url, '/hello?x=1');
  assert.equal(echo.headers['x-forwarded-for'], '127.0.0.1');
  assert.equal(r.headers['x-content-type-options'], 'nosniff');
  assert.equal(r.headers['server'], undefined);
  assert.equal(r.headers['x-powered-by'], undefined);
  assert.equal(r.headers['x-hop'], undefined);
  assert.ok(r.headers['x-request-id']);
});
