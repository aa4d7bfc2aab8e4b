// The response-body phase: a stage with onResponseBody sees the whole upstream body and its result is
// what the client gets (with the gateway's Content-Length); its limit answers 502 or passes the response
// on unchanged; a Rejection or a throw replaces the response with a problem; routes without such a stage
// keep streaming.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startGateway, config, client } from '../helpers/gateway.js';
import { startScripted } from '../helpers/servers.js';
import { testStage, withBlocks } from '../helpers/stages.js';
import { waitFor, within } from '../helpers/wait.js';
import { STAGES } from '../../src/pipeline/registry.js';
import type { RouteConfig } from '../../src/config/schema.js';

const SECRET = 'card 4111 1111 1111 1111, cvv 123';
const MASKED = SECRET.replace(/[0-9]/g, '#');
const BIG = 'digits 0123456789 '.repeat(100); // 1,800 bytes
let release: (() => void) | undefined;
/** read through a function: TypeScript would keep `release` narrowed to undefined after a reset */
const releaseUpstream = (): void => { assert.ok(release !== undefined, 'upstream still holding'); release(); };
const up = await startScripted('rsp', (req, res) => {
  const path = (req.url ?? '/').replace(/^\/[a-z]+/, '');
  if (path === '/secret') { res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(SECRET), 'x-up': '1' }); res.end(SECRET); return; }
  if (path === '/chunked') { res.writeHead(200, { 'content-type': 'text/plain' }); res.write(SECRET.slice(0, 10)); setTimeout(() => res.end(SECRET.slice(10)), 20); return; }
  if (path === '/big') { res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(BIG) }); res.end(BIG); return; }
  if (path === '/slow') {
    // first part now, the rest only when the test says so
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('first part;');
    release = () => res.end('second part');
    return;
  }
  res.writeHead(404); res.end();
});

const bodyCalls: string[] = [];
const mask = testStage({
  name: 'test-mask', order: 200, configKey: 'testMask',
  compile: () => ({ onResponseBody: (_ctx, _status, _headers, body) => { bodyCalls.push('mask'); return Buffer.from(body.toString('utf8').replace(/[0-9]/g, '#')); } }),
});
const censor = testStage({
  name: 'test-censor', order: 201, configKey: 'testCensor',
  compile: () => ({ onResponseBody: () => ({ status: 451, code: 'censored', detail: 'not for you', headers: { 'x-censor': 'yes' } }) }),
});
const broken = testStage({
  name: 'test-broken', order: 202, configKey: 'testBroken',
  compile: () => ({ onResponseBody: () => { throw new Error('boom in the response-body stage'); } }),
});

const r = (id: string, extra: Partial<RouteConfig>, blocks: Record<string, unknown>): RouteConfig =>
  withBlocks({ id, match: { pathPrefix: `/${id}` }, upstream: 'up', ...extra } as RouteConfig, blocks);
const { gw, base } = await startGateway(config({
  upstreams: { up: { targets: [{ url: up.url }] } },
  routes: [
    r('mask', {}, { testMask: {} }),
    r('overflow', { limits: { maxResponseBodyBytes: 100, responseBodyOverflow: 'error' } }, { testMask: {} }),
    r('pass', { limits: { maxResponseBodyBytes: 100, responseBodyOverflow: 'pass' } }, { testMask: {} }),
    r('censor', {}, { testCensor: {} }),
    r('broken', {}, { testBroken: {} }),
    r('plain', {}, {}),
  ],
}), { stages: [...STAGES, mask, censor, broken] });
after(async () => { release?.(); await gw.close(0); await up.close(); });

async function fetchText(path: string, method = 'GET') {
  const res = await request(`${base}${path}`, { method: method as 'GET', dispatcher: client });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text };
}

test('onResponseBody masks the body; the client gets it with a correct Content-Length', async () => {
  const res = await fetchText('/mask/secret');
  assert.equal(res.status, 200);
  assert.equal(res.text, MASKED);
  assert.equal(res.headers['content-length'], String(Buffer.byteLength(MASKED)));
  assert.equal(res.headers['x-up'], '1');
});

test('a chunked upstream body is masked and gets a Content-Length', async () => {
  const res = await fetchText('/mask/chunked');
  assert.equal(res.status, 200);
  assert.equal(res.text, MASKED);
  assert.equal(res.headers['content-length'], String(Buffer.byteLength(MASKED)));
  assert.equal(res.headers['transfer-encoding'], undefined);
});

test('HEAD on a response-body route: status and headers, no body, no wrong length', async () => {
  const res = await within(fetchText('/mask/secret', 'HEAD'), 5000, 'HEAD');
  assert.equal(res.status, 200);
  assert.equal(res.text, '');
  const cl = res.headers['content-length'];
  assert.ok(cl === undefined || cl === String(Buffer.byteLength(MASKED)), `content-length ${String(cl)}`);
  // and the connection is still good for a GET
  const get = await fetchText('/mask/secret');
  assert.equal(get.text, MASKED);
});

test('over maxResponseBodyBytes with responseBodyOverflow: error: 502 upstream-response-too-large', async () => {
  const res = await fetchText('/overflow/big');
  assert.equal(res.status, 502);
  assert.equal(res.headers['content-type'], 'application/problem+json');
  assert.match(String((JSON.parse(res.text) as { type: string }).type), /upstream-response-too-large$/);
  assert.ok(!res.text.includes('0123456789'));
  // under the limit, the same route masks
  const small = await fetchText('/overflow/secret');
  assert.equal(small.text, MASKED);
});

test('over maxResponseBodyBytes with responseBodyOverflow: pass: the original body streams through unmasked', async () => {
  bodyCalls.length = 0;
  const res = await fetchText('/pass/big');
  assert.equal(res.status, 200);
  assert.equal(res.text, BIG);
  assert.deepEqual(bodyCalls, []);
  const small = await fetchText('/pass/secret');
  assert.equal(small.text, MASKED);
});

test('a response-body stage returning a Rejection: that problem replaces the response', async () => {
  const res = await fetchText('/censor/secret');
  assert.equal(res.status, 451);
  assert.equal(res.headers['content-type'], 'application/problem+json');
  assert.equal(res.headers['x-censor'], 'yes');
  const p = JSON.parse(res.text) as { type: string; detail: string };
  assert.match(p.type, /censored$/);
  assert.equal(p.detail, 'not for you');
  assert.ok(!res.text.includes('4111'));
});

test('a response-body stage that throws: 502, the upstream body never leaks', async () => {
  const res = await fetchText('/broken/secret');
  assert.equal(res.status, 502);
  assert.equal(res.headers['content-type'], 'application/problem+json');
  assert.ok(!res.text.includes('4111'));
  assert.ok(!res.text.includes('boom'));
});

test('a route without a response-body stage streams: the first part arrives before the upstream has ended', async () => {
  release = undefined;
  const res = await request(`${base}/plain/slow`, { dispatcher: client });
  assert.equal(res.statusCode, 200);
  const it = res.body[Symbol.asyncIterator]();
  const first = await within(it.next(), 5000, 'the first part while the upstream holds the rest');
  assert.equal(Buffer.from(first.value as Buffer).toString(), 'first part;');
  releaseUpstream();
  let rest = '';
  for (let n = await it.next(); !n.done; n = await it.next()) rest += Buffer.from(n.value as Buffer).toString();
  assert.equal(rest, 'second part');
});

test('the same held response on a masking route is not sent before the upstream ends', async () => {
  release = undefined;
  const pending = request(`${base}/mask/slow`, { dispatcher: client });
  let settled = false;
  void pending.then(() => { settled = true; });
  await waitFor(() => release !== undefined, { what: 'the upstream to hold the response' });
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(settled, false, 'response head sent before the whole body was seen by the stage');
  releaseUpstream();
  const res = await pending;
  assert.equal(await res.body.text(), 'first part;second part');
});
