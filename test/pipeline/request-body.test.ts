// The request-body phase through a real gateway and upstream: bodies reach the upstream unchanged (a
// chunked one with a Content-Length), limits answer 413 before the upstream is contacted, malformed
// bodies 400 with the place of the fault, the requestBody stage's own checks (415, required), and the
// phase's position: a stage in front of it refuses without reading the body; a stage behind it sees ctx.body.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { startGateway, config, client } from '../helpers/gateway.js';
import { startScripted, parseRawResponse, type RawResponse } from '../helpers/servers.js';
import { testStage, withBlocks } from '../helpers/stages.js';
import { within } from '../helpers/wait.js';
import { STAGES } from '../../src/pipeline/registry.js';
import { SecurityEventBus, type SecurityEvent } from '../../src/observability/security-events.js';

// every refused body is a security event (type 'body', reason = the problem code)
const events = new SecurityEventBus();
const seenEvents: SecurityEvent[] = [];
events.subscribe((e) => { seenEvents.push(e); });
import type { ParsedBody } from '../../src/body/index.js';

const LIMIT = 1024;
const up = await startScripted('rb', (req, res, rec) => {
  // echo the exact bytes so byte-for-byte equality can be checked
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ length: rec.bodyLength, sha256: rec.bodySha256, cl: rec.headers['content-length'] ?? null, te: rec.headers['transfer-encoding'] ?? null }));
  void req;
});
const bodyOf = new Map<string, Buffer>();
// keep the raw bytes too (the scripted upstream hashes them)
up.server.prependListener('request', (req: import('node:http').IncomingMessage) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => bodyOf.set(String(req.headers['x-request-id']), Buffer.concat(chunks)));
});

const seenByLate: { kind: string; json: unknown }[] = [];
const gate = testStage({
  name: 'test-gate', order: 10, configKey: 'testGate',
  compile: () => ({ onRequest: (ctx) => (ctx.req.headers['x-deny'] !== undefined ? { status: 401, code: 'denied', detail: 'test gate' } : undefined) }),
});
const late = testStage({
  name: 'test-late', order: 96, configKey: 'testLate',
  compile: () => ({
    needsRequestBody: true,
    onRequest: (ctx) => {
      const b = ctx.body as ParsedBody | undefined;
      seenByLate.push({ kind: b?.kind ?? 'undefined', json: b !== undefined && b.kind === 'json' ? b.json : undefined });
      return undefined;
    },
  }),
});

const { gw, base, port } = await startGateway(config({
  upstreams: { up: { targets: [{ url: up.url }] } },
  routes: [
    { id: 'deep', match: { pathPrefix: '/deep' }, upstream: 'up', requestBody: {} },
    { id: 'typed', match: { pathPrefix: '/typed' }, upstream: 'up', requestBody: { contentTypes: ['application/json'] } },
    { id: 'required', match: { pathPrefix: '/required' }, upstream: 'up', requestBody: { required: true } },
    { id: 'parts', match: { pathPrefix: '/parts' }, upstream: 'up', requestBody: {}, limits: { body: { maxParts: 2 } } },
    withBlocks({ id: 'gated', match: { pathPrefix: '/gated' }, upstream: 'up', requestBody: {} }, { testGate: {} }),
    withBlocks({ id: 'late', match: { pathPrefix: '/late' }, upstream: 'up' }, { testLate: {} }),
    { id: 'body', match: { pathPrefix: '/' }, upstream: 'up', requestBody: {}, limits: { maxBodyBytes: LIMIT } },
  ],
}), { stages: [...STAGES, gate, late], events });
after(async () => { await gw.close(0); await up.close(); });

async function post(path: string, body: string | Buffer | Readable | undefined, headers: Record<string, string> = {}) {
  const r = await request(`${base}${path}`, { method: 'POST', body, headers, dispatcher: client });
  const text = await r.body.text();
  return { status: r.statusCode, headers: r.headers, text, json: () => JSON.parse(text) as Record<string, unknown> };
}

/**
 * Writes `bytes` on a raw socket WITHOUT ending it and resolves with the first complete response (head +
 * Content-Length body), whether or not the gateway closes afterwards; `ms` = time to the response.
 */
function rawPartial(bytes: string | Buffer, timeoutMs = 5000): Promise<RawResponse & { ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const s = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`no complete response; got ${JSON.stringify(buf.toString('latin1').slice(0, 200))}`)); }, timeoutMs);
    const tryParse = (): boolean => {
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return false;
      const r = parseRawResponse(buf);
      const cl = Number(r.headers['content-length']?.[0] ?? 0);
      if (r.body.length < cl) return false;
      clearTimeout(timer);
      s.destroy();
      resolve({ ...r, ms: performance.now() - t0 });
      return true;
    };
    s.on('connect', () => s.write(bytes));
    s.on('data', (c: Buffer) => { buf = Buffer.concat([buf, c]); tryParse(); });
    s.on('close', () => { if (!tryParse()) { clearTimeout(timer); reject(new Error(`closed without a complete response: ${JSON.stringify(buf.toString('latin1').slice(0, 200))}`)); } });
    s.on('error', () => { /* a reset after the response: handled on close */ });
  });
}

const problem = (r: RawResponse) => JSON.parse(r.body.toString('utf8')) as Record<string, unknown>;

test('a JSON body reaches the upstream byte for byte (odd whitespace, escapes and key order kept)', async () => {
  const body = '{ "b":1,\n\t"a" : [1.50, "\\u0041", {"z":null}] ,"c":"é"}  ';
  const r = await request(`${base}/echo`, { method: 'POST', body, headers: { 'content-type': 'application/json' }, dispatcher: client });
  assert.equal(r.statusCode, 200);
  const got = await r.body.json() as { length: number; cl: string | null; te: string | null };
  const id = String(r.headers['x-request-id']);
  assert.deepEqual(bodyOf.get(id), Buffer.from(body));
  assert.equal(got.cl, String(Buffer.byteLength(body)));
});

test('a chunked JSON body (no Content-Length) reaches the upstream unchanged, with a Content-Length', async () => {
  const body = JSON.stringify({ items: Array.from({ length: 20 }, (_, i) => ({ i, s: 'x'.repeat(i) })) });
  assert.ok(body.length < LIMIT);
  const pieces = [body.slice(0, 100), body.slice(100, 300), body.slice(300)];
  const r = await request(`${base}/echo`, { method: 'POST', body: Readable.from(pieces.map((p) => Buffer.from(p))), headers: { 'content-type': 'application/json' }, dispatcher: client });
  assert.equal(r.statusCode, 200);
  const got = await r.body.json() as { cl: string | null; te: string | null };
  assert.equal(got.cl, String(Buffer.byteLength(body)));
  assert.equal(got.te, null);
  assert.deepEqual(bodyOf.get(String(r.headers['x-request-id'])), Buffer.from(body));
});

test('Content-Length over the route limit: 413 problem+json, upstream not contacted', async () => {
  const before = up.arrived;
  const r = await rawPartial(`POST /echo HTTP/1.1\r\nHost: gw.test\r\nContent-Type: application/json\r\nContent-Length: ${LIMIT + 1}\r\n\r\n{"a":`);
  assert.equal(r.status, 413);
  assert.equal(r.headers['content-type']?.[0], 'application/problem+json');
  assert.match(String(problem(r).type), /body-too-large$/);
  assert.equal(up.arrived, before);
});

test('a chunked body that grows past the route limit: an actual 413 response, upstream not contacted', async () => {
  const before = up.arrived;
  const chunk = 'x'.repeat(600);
  // two chunks: 1200 bytes > 1024; the socket stays open (no terminating chunk), so a reset alone would fail
  const head = 'POST /echo HTTP/1.1\r\nHost: gw.test\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n';
  const r = await rawPartial(`${head}${(600).toString(16)}\r\n${chunk}\r\n${(600).toString(16)}\r\n${chunk}\r\n`);
  assert.equal(r.status, 413);
  assert.equal(r.headers['content-type']?.[0], 'application/problem+json');
  assert.match(String(problem(r).type), /body-too-large$/);
  assert.equal(r.headers.connection?.[0], 'close');
  assert.equal(up.arrived, before);
});

test('malformed JSON: 400 malformed-json with a position; the upstream never sees it', async () => {
  const before = up.arrived;
  const r = await post('/echo', '{"a": 1,, "b": 2}', { 'content-type': 'application/json' });
  assert.equal(r.status, 400);
  assert.equal(r.headers['content-type'], 'application/problem+json');
  const p = r.json();
  assert.match(String(p.type), /malformed-json$/);
  assert.equal(p.position, 8);
  assert.equal(up.arrived, before);
});

test('duplicate JSON key: 400 duplicate-json-key', async () => {
  const before = up.arrived;
  const r = await post('/echo', '{"a": 1, "\\u0061": 2}', { 'content-type': 'application/json' });
  assert.equal(r.status, 400);
  assert.match(String(r.json().type), /duplicate-json-key$/);
  assert.equal(up.arrived, before);
});

test('5,000-deep JSON: 413 json-too-deep, and the gateway serves the next request', async () => {
  const before = up.arrived;
  const deep = '['.repeat(5000) + ']'.repeat(5000);
  const r = await post('/deep', deep, { 'content-type': 'application/json' });
  assert.equal(r.status, 413);
  assert.equal(r.headers['content-type'], 'application/problem+json');
  assert.match(String(r.json().type), /json-too-deep$/);
  assert.equal(up.arrived, before);
  const ok = await post('/deep', '{"fine":true}', { 'content-type': 'application/json' });
  assert.equal(ok.status, 200);
});

test('contentTypes: [application/json] + text/xml: 415 naming the accepted type', async () => {
  const before = up.arrived;
  const r = await post('/typed', '<a/>', { 'content-type': 'text/xml' });
  assert.equal(r.status, 415);
  assert.match(String(r.json().type), /unsupported-media-type$/);
  assert.match(String(r.json().detail), /application\/json/);
  assert.equal(r.headers['accept-post'], 'application/json');
  assert.equal(up.arrived, before);
  const ok = await post('/typed', '{}', { 'content-type': 'application/json' });
  assert.equal(ok.status, 200);
});

test('required: true + an empty POST: 400 body-required', async () => {
  const r = await post('/required', undefined);
  assert.equal(r.status, 400);
  assert.match(String(r.json().type), /body-required$/);
  const ok = await post('/required', '{}', { 'content-type': 'application/json' });
  assert.equal(ok.status, 200);
});

function multipart(parts: number): { body: string; type: string } {
  const b = 'XyZbOuNdArY';
  let body = '';
  for (let i = 0; i < parts; i++) body += `--${b}\r\nContent-Disposition: form-data; name="f${i}"\r\n\r\nvalue ${i}\r\n`;
  body += `--${b}--\r\n`;
  return { body, type: `multipart/form-data; boundary=${b}` };
}

test('multipart within limits passes unchanged; more parts than limits.body.maxParts: 413', async () => {
  const okBody = multipart(2);
  const ok = await request(`${base}/parts`, { method: 'POST', body: okBody.body, headers: { 'content-type': okBody.type }, dispatcher: client });
  assert.equal(ok.statusCode, 200);
  await ok.body.dump();
  assert.deepEqual(bodyOf.get(String(ok.headers['x-request-id'])), Buffer.from(okBody.body));
  const before = up.arrived;
  const bad = multipart(3);
  const r = await post('/parts', bad.body, { 'content-type': bad.type });
  assert.equal(r.status, 413);
  assert.match(String(r.json().type), /multipart-too-many-parts$/);
  assert.equal(up.arrived, before);
});

test('malformed urlencoded body: 400 malformed-form', async () => {
  const before = up.arrived;
  const r = await post('/echo', 'a=1&b=%zz', { 'content-type': 'application/x-www-form-urlencoded' });
  assert.equal(r.status, 400);
  assert.match(String(r.json().type), /malformed-form$/);
  assert.equal(up.arrived, before);
});

test('a stage in front of the body phase refuses without reading the body: prompt answer, upstream not contacted', async () => {
  const before = up.arrived;
  // 100 KB announced, 5 bytes sent: a gateway that waited for the body would never answer
  const r = await rawPartial('POST /gated HTTP/1.1\r\nHost: gw.test\r\nX-Deny: 1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"a":', 3000);
  assert.equal(r.status, 401);
  assert.match(String(problem(r).type), /denied$/);
  assert.ok(r.ms < 2000, `answered after ${r.ms} ms`);
  // the body is not read: the connection must not be kept for a next request
  assert.equal(r.headers.connection?.[0], 'close');
  assert.equal(up.arrived, before);
  // without the refusal the same route reads and forwards the body
  const ok = await within(post('/gated', '{"a":1}', { 'content-type': 'application/json' }), 5000, 'gated request');
  assert.equal(ok.status, 200);
});

test('a stage behind the body phase (order 96, needsRequestBody) sees ctx.body', async () => {
  seenByLate.length = 0;
  const r = await post('/late/x', '{"hello":[1,2]}', { 'content-type': 'application/json' });
  assert.equal(r.status, 200);
  assert.deepEqual(seenByLate, [{ kind: 'json', json: { hello: [1, 2] } }]);
});

test('refused bodies are security events (type body, the problem code); an accepted body is none', async () => {
  const before = seenEvents.length;
  assert.equal((await post('/events', '{"a":1', { 'content-type': 'application/json' })).status, 400);
  // a declared length over the limit is refused before routing's stages (a protocol event) ...
  assert.equal((await post('/events', 'x'.repeat(LIMIT + 1), { 'content-type': 'text/plain' })).status, 413);
  // ... a chunked body that grows past it, by the body phase
  assert.equal((await post('/events', Readable.from([Buffer.alloc(LIMIT), Buffer.alloc(10)]), { 'content-type': 'text/plain' })).status, 413);
  assert.equal((await post('/events', '{"a":1}', { 'content-type': 'application/json' })).status, 200);
  assert.deepEqual(seenEvents.slice(before).map((e) => `${e.type}/${e.reason}/${e.route}`),
    ['body/malformed-json/body', 'protocol/body-too-large/body', 'body/body-too-large/body']);
});
