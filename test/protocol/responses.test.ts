// What the gateway says when it refuses: every gateway-generated error, from the HTTP parser (clientError)
// or from the handler, is an RFC 9457 problem+json with the request id in body and header, the security
// headers, no Server / X-Powered-By. Plus header values Node accepts that the upstream client might not.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startUpstream } from '../helpers/upstream.js';
import { startGateway } from '../helpers/gateway.js';
import { exchange, finals, assertProblem, canary } from './wire.js';

const T = { timeout: 15_000 };
const up = await startUpstream('a');
const { gw, port } = await startGateway({
  listeners: [{ name: 'main', address: '127.0.0.1', port: 0, limits: { maxHeaderBytes: 16 * 1024, maxHeaderCount: 30, maxUrlLength: 512, maxBodyBytes: 100 } }],
  upstreams: { a: { targets: [{ url: up.url }] } },
  routes: [
    { id: 'api', match: { pathPrefix: '/api' }, upstream: 'a' },
    { id: 'status', match: { pathPrefix: '/status' }, upstream: 'a' },
    { id: 'teapot', match: { path: '/direct' }, respond: { status: 200, body: 'direct' } },
  ],
});
after(async () => { await gw.close(0); await up.close(); });

const H = 'Host: gw.test\r\n';

interface Case { name: string; bytes: string; status: number; path: 'parser' | 'handler'; close: boolean }

const CASES: Case[] = [
  { name: 'malformed request line', bytes: 'GET /api HTTP/1.1 extra\r\n\r\n', status: 400, path: 'parser', close: true },
  { name: 'invalid header name', bytes: `GET /api HTTP/1.1\r\n${H}Fo o: x\r\n\r\n`, status: 400, path: 'parser', close: true },
  { name: 'CL and TE together', bytes: `POST /api HTTP/1.1\r\n${H}Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, status: 400, path: 'parser', close: true },
  { name: 'head over maxHeaderBytes', bytes: `GET /api HTTP/1.1\r\n${H}X-Big: ${'b'.repeat(17 * 1024)}\r\n\r\n`, status: 431, path: 'parser', close: true },
  { name: 'duplicate Host', bytes: `GET /api HTTP/1.1\r\n${H}${H}\r\n`, status: 400, path: 'handler', close: true },
  { name: 'missing Host', bytes: 'GET /api HTTP/1.1\r\n\r\n', status: 400, path: 'handler', close: true },
  { name: 'unsupported Transfer-Encoding', bytes: `POST /api HTTP/1.1\r\n${H}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`, status: 400, path: 'handler', close: true },
  { name: 'bad path (encoded slash)', bytes: `GET /api/a%2fb HTTP/1.1\r\n${H}\r\n`, status: 400, path: 'handler', close: true },
  { name: 'too many header fields', bytes: `GET /api HTTP/1.1\r\n${H}${Array.from({ length: 40 }, (_, i) => `X-${i}: v\r\n`).join('')}\r\n`, status: 431, path: 'handler', close: true },
  { name: 'URL over maxUrlLength', bytes: `GET /api/${'u'.repeat(600)} HTTP/1.1\r\n${H}\r\n`, status: 414, path: 'handler', close: true },
  { name: 'Content-Length over maxBodyBytes', bytes: `POST /api HTTP/1.1\r\n${H}Content-Length: 500\r\n\r\n${'x'.repeat(500)}`, status: 413, path: 'handler', close: true },
  { name: 'HTTP/2.0 in an HTTP/1 request line', bytes: `GET /api HTTP/2.0\r\n${H}\r\n`, status: 505, path: 'handler', close: true },
  { name: 'TRACE', bytes: `TRACE /api HTTP/1.1\r\n${H}Connection: close\r\n\r\n`, status: 405, path: 'handler', close: false },
  { name: 'no route', bytes: `GET /nowhere HTTP/1.1\r\n${H}Connection: close\r\n\r\n`, status: 404, path: 'handler', close: false },
  { name: 'upstream 5xx replaced by a problem', bytes: `GET /status/500 HTTP/1.1\r\n${H}Connection: close\r\n\r\n`, status: 500, path: 'handler', close: false },
  { name: 'WebSocket upgrade on a route without websocket', bytes: `GET /api HTTP/1.1\r\n${H}Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`, status: 400, path: 'handler', close: true },
  { name: 'h2c upgrade attempt', bytes: `GET /api HTTP/1.1\r\n${H}Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n`, status: 400, path: 'handler', close: true },
];

for (const c of CASES) {
  test(`problem+json from the ${c.path}: ${c.name} -> ${c.status}`, T, async () => {
    const mark = up.seen.length;
    const ex = await exchange(port, c.bytes);
    const rs = finals(ex.responses);
    assert.equal(rs.length, 1, `exactly one response: ${JSON.stringify(ex.text.slice(0, 300))}`);
    const body = assertProblem(rs[0]!, c.status);
    assert.equal(rs[0]!.header('cache-control'), 'no-store');
    assert.ok(!JSON.stringify(body).includes('stack'), 'no internals in the body');
    assert.equal(ex.closed, true, 'the connection is closed');
    if (c.close) assert.equal(rs[0]!.header('connection'), 'close');
    const seen = await canary(port, up, mark, c.name, '/api/canary');
    // Only the 5xx case reaches the upstream (and its body never reaches the client).
    assert.deepEqual(seen.map((s) => s.url), c.status === 500 ? ['/status/500'] : []);
  });
}

test('a configured request-id header is used on both paths', T, async () => {
  const g = await startGateway({
    listeners: [{ name: 'main', address: '127.0.0.1', port: 0 }],
    requestId: { header: 'x-trace-id' },
    routes: [{ id: 'd', match: { path: '/direct' }, respond: { status: 200, body: 'ok' } }],
  });
  try {
    const parser = finals((await exchange(g.port, 'GET / HTTP/1.1\r\nBad Header: x\r\n\r\n')).responses)[0]!;
    assertProblem(parser, 400, 'x-trace-id');
    const handler = finals((await exchange(g.port, 'GET /missing HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')).responses)[0]!;
    assertProblem(handler, 404, 'x-trace-id');
    assert.notEqual(parser.header('x-trace-id'), handler.header('x-trace-id'));
  } finally {
    await g.gw.close(0);
  }
});

test('direct responses carry the security headers and no fingerprint', T, async () => {
  const ex = await exchange(port, `GET /direct HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
  const r = finals(ex.responses)[0]!;
  assert.equal(r.status, 200);
  assert.equal(r.body, 'direct');
  assert.equal(r.header('x-content-type-options'), 'nosniff');
  assert.equal(r.headers.has('server'), false);
  assert.equal(r.headers.has('x-powered-by'), false);
  assert.ok(r.header('x-request-id'));
});

// ---------------------------------------------------------------- header values Node accepts

interface ValueCase { name: string; raw: string; forwarded: string }
const VALUES: ValueCase[] = [
  // obs-text: kept byte for byte (Node and undici both treat header strings as latin1)
  { name: 'obs-text bytes \\x80-\\xff', raw: 'caf\xe9 \x80\xff', forwarded: 'caf\xe9 \x80\xff' },
  { name: 'UTF-8 bytes', raw: Buffer.from('naïve ✓', 'utf8').toString('latin1'), forwarded: Buffer.from('naïve ✓', 'utf8').toString('latin1') },
  { name: 'leading and trailing whitespace (OWS, trimmed)', raw: ' \t padded \t ', forwarded: 'padded' },
  { name: 'an inner tab', raw: 'a\tb', forwarded: 'a\tb' },
  { name: 'an empty value', raw: '', forwarded: '' },
  { name: 'a 12 KiB value', raw: 'v'.repeat(12 * 1024), forwarded: 'v'.repeat(12 * 1024) },
];

for (const v of VALUES) {
  test(`header value with ${v.name}: forwarded exactly, or refused with 400 — never a crash`, T, async () => {
    const mark = up.seen.length;
    const ex = await exchange(port, `GET /api/value HTTP/1.1\r\n${H}X-Value: ${v.raw}\r\nConnection: close\r\n\r\n`);
    const r = finals(ex.responses)[0];
    assert.ok(r !== undefined, 'an answer');
    const seen = await canary(port, up, mark, v.name, '/api/canary');
    if (r.status === 400) {
      assertProblem(r, 400);
      assert.deepEqual(seen, []);
      return;
    }
    assert.equal(r.status, 200);
    assert.equal(seen.length, 1);
    const raw = seen[0]!.rawHeaders;
    const i = raw.findIndex((h, k) => k % 2 === 0 && h.toLowerCase() === 'x-value');
    assert.notEqual(i, -1, 'the header was forwarded');
    assert.equal(raw[i + 1], v.forwarded);
  });
}

test('a value long enough that the upstream refuses the head: a clean answer, and the gateway keeps serving', T, async () => {
  // 15 KiB passes the gateway's 16 KiB head limit; with the gateway's own headers added it may not pass the upstream's.
  const mark = up.seen.length;
  const ex = await exchange(port, `GET /api/huge HTTP/1.1\r\n${H}X-Value: ${'h'.repeat(15 * 1024)}\r\nConnection: close\r\n\r\n`);
  const r = finals(ex.responses)[0];
  assert.ok(r !== undefined, 'an answer');
  assert.ok(r.status === 200 || (r.status >= 400 && r.status < 600), `status ${r.status}`);
  if (r.status >= 500) assertProblem(r, r.status);
  await canary(port, up, mark, 'huge value', '/api/canary');
});
