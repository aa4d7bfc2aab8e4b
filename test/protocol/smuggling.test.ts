// Request smuggling and malformed framing, sent as exact bytes. For every attack: the gateway answers with
// a problem+json error (or closes), closes the connection, the upstream never receives the ambiguous
// request nor anything pipelined behind it, and the gateway keeps serving.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { startUpstream } from '../helpers/upstream.js';
import { startGateway, config } from '../helpers/gateway.js';
import { exchange, finals, assertProblem, canary, parseResponses } from './wire.js';

const up = await startUpstream('a');
const { gw, port } = await startGateway(config({
  // Default passive health checking: a refused client must never count against the upstream.
  upstreams: { a: { targets: [{ url: up.url }] } },
  routes: [
    { id: 'ws', match: { pathPrefix: '/ws' }, upstream: 'a', websocket: true },
    { id: 'all', match: { pathPrefix: '/' }, upstream: 'a' },
  ],
}));
after(async () => { await gw.close(0); await up.close(); });
// WebSocket handshakes that reach the upstream (it refuses them; we only record that they arrived).
const upgrades: string[] = [];
up.server.on('upgrade', (req: { url?: string }, sock: net.Socket) => { upgrades.push(req.url ?? ''); sock.destroy(); });

const H = 'Host: gw.test\r\n';
// Appended to every attack: if the gateway ever took it for a request, the upstream would see /inner.
const INNER = 'GET /inner HTTP/1.1\r\nHost: gw.test\r\n\r\n';
const post = (headers: string, body = '') => `POST /smuggle HTTP/1.1\r\n${H}${headers}\r\n${body}${INNER}`;
const get = (headers: string) => `GET /smuggle HTTP/1.1\r\n${H}${headers}\r\n${INNER}`;
// A WebSocket handshake on a websocket route: would be tunnelled to the upstream if it were ever taken as a request.
const WS_INNER = 'GET /ws/inner HTTP/1.1\r\nHost: gw.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
  'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';

interface Attack { name: string; bytes: string; status?: number }

const ATTACKS: Attack[] = [
  // --- Content-Length and Transfer-Encoding together, and odd Transfer-Encoding ---
  { name: 'CL then TE', bytes: post('Content-Length: 6\r\nTransfer-Encoding: chunked\r\n', '0\r\n\r\n') },
  { name: 'TE then CL', bytes: post('Transfer-Encoding: chunked\r\nContent-Length: 6\r\n', '0\r\n\r\n') },
  { name: 'TE chunked plus a second TE header (identity)', bytes: post('Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n', '0\r\n\r\n') },
  { name: 'TE chunked twice', bytes: post('Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n', '0\r\n\r\n') },
  { name: 'TE: chunked, identity', bytes: post('Transfer-Encoding: chunked, identity\r\n', '0\r\n\r\n') },
  { name: 'TE: identity, chunked', bytes: post('Transfer-Encoding: identity, chunked\r\n', '0\r\n\r\n') },
  { name: 'TE: gzip, chunked', bytes: post('Transfer-Encoding: gzip, chunked\r\n', '0\r\n\r\n') },
  { name: 'TE: chunked, chunked', bytes: post('Transfer-Encoding: chunked, chunked\r\n', '0\r\n\r\n') },
  { name: 'TE: xchunked', bytes: post('Transfer-Encoding: xchunked\r\n', '0\r\n\r\n') },
  { name: 'TE: identity', bytes: post('Transfer-Encoding: identity\r\n') },
  { name: 'TE: "chunked" (quoted)', bytes: post('Transfer-Encoding: "chunked"\r\n', '0\r\n\r\n') },
  { name: 'TE: chunked;q=1 (parameter)', bytes: post('Transfer-Encoding: chunked;q=1\r\n', '0\r\n\r\n') },
  { name: 'TE: chunked, (trailing comma)', bytes: post('Transfer-Encoding: chunked,\r\n', '0\r\n\r\n') },
  { name: 'TE: ,chunked (leading comma)', bytes: post('Transfer-Encoding: ,chunked\r\n', '0\r\n\r\n') },
  { name: 'TE empty', bytes: post('Transfer-Encoding:\r\n') },
  { name: 'TE with space before the colon', bytes: post('Transfer-Encoding : chunked\r\n', '0\r\n\r\n') },
  { name: 'TE with tab before the colon', bytes: post('Transfer-Encoding\t: chunked\r\n', '0\r\n\r\n') },
  { name: 'TE value after vertical tab', bytes: post('Transfer-Encoding:\x0bchunked\r\n', '0\r\n\r\n') },
  { name: 'TE value after form feed', bytes: post('Transfer-Encoding:\x0cchunked\r\n', '0\r\n\r\n') },
  { name: 'TE value with trailing tab', bytes: post('Transfer-Encoding: chunked\t\r\n', '0\r\n\r\n') },
  { name: 'TE value after NBSP (obs-text)', bytes: post('Transfer-Encoding: \xa0chunked\r\n', '0\r\n\r\n') },
  { name: 'TE with obs-fold continuation line', bytes: post('Transfer-Encoding: \r\n chunked\r\n', '0\r\n\r\n') },
  { name: 'TE chunked in an HTTP/1.0 request', bytes: `POST /smuggle HTTP/1.0\r\n${H}Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${INNER}` },
  // --- Content-Length ---
  { name: 'duplicate Content-Length, same value', bytes: post('Content-Length: 5\r\nContent-Length: 5\r\n', 'hello') },
  { name: 'duplicate Content-Length, different values', bytes: post('Content-Length: 5\r\nContent-Length: 40\r\n', 'hello') },
  { name: 'Content-Length: 5, 5 (list)', bytes: post('Content-Length: 5, 5\r\n', 'hello') },
  { name: 'Content-Length: +5', bytes: post('Content-Length: +5\r\n', 'hello') },
  { name: 'Content-Length: -1', bytes: post('Content-Length: -1\r\n', 'hello') },
  { name: 'Content-Length: 5 5', bytes: post('Content-Length: 5 5\r\n', 'hello') },
  { name: 'Content-Length: 0x5', bytes: post('Content-Length: 0x5\r\n', 'hello') },
  { name: 'Content-Length: 99999999999999999999', bytes: post('Content-Length: 99999999999999999999\r\n', 'hello') },
  { name: 'Content-Length with 16 digits (leading zeros)', bytes: post('Content-Length: 0000000000000005\r\n', 'hello') },
  { name: 'Content-Length empty', bytes: post('Content-Length:\r\n') },
  { name: 'Content-Length with space before the colon', bytes: post('Content-Length : 5\r\n', 'hello') },
  // --- chunked body framing ---
  { name: 'chunk size 0x5', bytes: post('Transfer-Encoding: chunked\r\n', '0x5\r\nhello\r\n0\r\n\r\n') },
  { name: 'negative chunk size', bytes: post('Transfer-Encoding: chunked\r\n', '-5\r\nhello\r\n0\r\n\r\n') },
  { name: 'chunk size overflowing 64 bits', bytes: post('Transfer-Encoding: chunked\r\n', 'ffffffffffffffffff\r\nhello\r\n0\r\n\r\n') },
  { name: 'chunk size followed by a space', bytes: post('Transfer-Encoding: chunked\r\n', '5 \r\nhello\r\n0\r\n\r\n') },
  { name: 'chunk extension ended by a bare LF', bytes: post('Transfer-Encoding: chunked\r\n', '5;a=b\nhello\r\n0\r\n\r\n') },
  { name: 'chunked body with bare LF line endings', bytes: post('Transfer-Encoding: chunked\r\n', '5\nhello\n0\n\n') },
  { name: 'chunk data longer than its size', bytes: post('Transfer-Encoding: chunked\r\n', '5\r\nhelloXX\r\n0\r\n\r\n') },
  { name: 'control byte in a trailer field', bytes: post('Transfer-Encoding: chunked\r\n', '5\r\nhello\r\n0\r\nX-T: a\x01b\r\n\r\n') },
  // --- request line ---
  { name: 'request line ended by a bare LF', bytes: `GET /smuggle HTTP/1.1\n${H}\r\n${INNER}` },
  { name: 'request line ended by CR CR LF', bytes: `GET /smuggle HTTP/1.1\r\r\n${H}\r\n${INNER}` },
  { name: 'tabs as request-line separators', bytes: `GET\t/smuggle\tHTTP/1.1\r\n${H}\r\n${INNER}` },
  { name: 'lower-case method', bytes: `get /smuggle HTTP/1.1\r\n${H}\r\n${INNER}` },
  { name: 'unknown method token', bytes: `TRACK /smuggle HTTP/1.1\r\n${H}\r\n${INNER}` },
  { name: 'HTTP/1.2', bytes: `GET /smuggle HTTP/1.2\r\n${H}\r\n${INNER}` },
  { name: 'HTTP/2.0 in an HTTP/1 request line', bytes: `GET /smuggle HTTP/2.0\r\n${H}\r\n${INNER}`, status: 505 },
  { name: 'HTTP/0.9 with headers', bytes: `GET /smuggle HTTP/0.9\r\n${H}\r\n${INNER}`, status: 505 },
  { name: 'HTTP/2 connection preface', bytes: `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n${INNER}` },
  // --- header syntax ---
  { name: 'header line ended by a bare LF', bytes: get('Foo: bar\n') },
  { name: 'header name with a trailing space', bytes: get('Foo : bar\r\n') },
  { name: 'header name with a quote', bytes: get('Fo"o: x\r\n') },
  { name: 'header name with \\x01', bytes: get('Foo\x01: x\r\n') },
  { name: 'empty header name', bytes: get(': x\r\n') },
  { name: 'header value with \\x01', bytes: get('Foo: a\x01b\r\n') },
  { name: 'header value with DEL (\\x7f)', bytes: get('Foo: a\x7fb\r\n') },
  { name: 'header value with NUL', bytes: get('Foo: a\x00b\r\n') },
  { name: 'header value with a bare CR', bytes: get('Foo: a\rb\r\n') },
  { name: 'obs-fold on an ordinary header', bytes: get('Foo: a\r\n b\r\n') },
  { name: 'whitespace-led line right after the request line', bytes: `GET /smuggle HTTP/1.1\r\n Foo: x\r\n${H}\r\n${INNER}` },
  // --- Host ---
  { name: 'two Host headers', bytes: `GET /smuggle HTTP/1.1\r\nHost: gw.test\r\nHost: other.test\r\n\r\n${INNER}` },
  { name: 'missing Host on HTTP/1.1', bytes: `GET /smuggle HTTP/1.1\r\nX-A: 1\r\n\r\n${INNER}` },
  { name: 'missing Host on HTTP/1.0', bytes: `GET /smuggle HTTP/1.0\r\nConnection: keep-alive\r\n\r\n${INNER}` },
  { name: 'empty Host', bytes: `GET /smuggle HTTP/1.1\r\nHost:\r\n\r\n${INNER}` },
  { name: 'Host with a space', bytes: `GET /smuggle HTTP/1.1\r\nHost: gw.test evil.test\r\n\r\n${INNER}` },
  { name: 'Host with a path', bytes: `GET /smuggle HTTP/1.1\r\nHost: gw.test/evil\r\n\r\n${INNER}` },
  { name: 'Host with userinfo', bytes: `GET /smuggle HTTP/1.1\r\nHost: user@gw.test\r\n\r\n${INNER}` },
  { name: 'absolute-form target naming another host than Host', bytes: `GET http://evil.test/smuggle HTTP/1.1\r\n${H}\r\n${INNER}` },
  // --- a WebSocket handshake pipelined behind a refused request: never tunnelled ---
  { name: 'WebSocket handshake behind a duplicate Host', bytes: `POST /smuggle HTTP/1.1\r\n${H}${H}Content-Length: 0\r\n\r\n${WS_INNER}` },
  { name: 'WebSocket handshake behind a 16-digit Content-Length', bytes: `POST /smuggle HTTP/1.1\r\n${H}Content-Length: 0000000000000000\r\n\r\n${WS_INNER}` },
  { name: 'WebSocket handshake inside an unsupported Transfer-Encoding', bytes: `POST /smuggle HTTP/1.1\r\n${H}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n${WS_INNER}` },
  // --- an Upgrade request carrying a body: never a tunnel, never a second request ---
  { name: 'Upgrade on a POST with a body', bytes: `POST /smuggle HTTP/1.1\r\n${H}Connection: upgrade\r\nUpgrade: websocket\r\nContent-Length: ${INNER.length}\r\n\r\n${INNER}` },
];

for (const a of ATTACKS) {
  test(`smuggling: ${a.name}`, async () => {
    const mark = up.seen.length;
    const upgradesBefore = upgrades.length;
    const ex = await exchange(port, a.bytes);
    assert.equal(ex.closed, true, `the gateway closes the connection (got ${JSON.stringify(ex.text.slice(0, 120))})`);
    const rs = finals(ex.responses);
    assert.ok(rs.length <= 1, `at most one response, got ${rs.length}: ${JSON.stringify(ex.text)}`);
    if (rs.length === 1) {
      assertProblem(rs[0]!, a.status ?? 400);
      assert.equal(rs[0]!.header('connection'), 'close');
    } else {
      assert.equal(ex.text, '', 'nothing but a close');
    }
    const leaked = await canary(port, up, mark, a.name);
    assert.deepEqual(leaked.map((s) => `${s.method} ${s.url}`), [], 'the upstream saw none of it');
    assert.deepEqual(upgrades.slice(upgradesBefore), [], 'no handshake reached the upstream');
  });
}

// --- oddities that are valid HTTP: accepted, and re-framed by the gateway so the upstream cannot misread them ---
const ODD_BUT_VALID: Attack[] = [
  { name: 'TE: chunked after a tab', bytes: 'Transfer-Encoding:\tchunked\r\n' },
  { name: 'TE: CHUNKED (case)', bytes: 'Transfer-Encoding: CHUNKED\r\n' },
  { name: 'TE: chunked with trailing spaces', bytes: 'Transfer-Encoding: chunked  \r\n' },
];
for (const a of ODD_BUT_VALID) {
  test(`valid oddity is accepted and re-framed: ${a.name}`, async () => {
    const mark = up.seen.length;
    const ex = await exchange(port, `POST /odd HTTP/1.1\r\n${H}${a.bytes}Connection: close\r\n\r\n0\r\n\r\n`);
    const r = finals(ex.responses)[0];
    assert.equal(r?.status, 200);
    const seen = await canary(port, up, mark, a.name);
    assert.deepEqual(seen.map((s) => `${s.method} ${s.url} ${JSON.stringify(s.body)}`), ['POST /odd ""']);
    // The client's Transfer-Encoding is never passed on verbatim: the gateway frames the body itself.
    assert.ok(!seen[0]!.rawHeaders.some((h, i) => i % 2 === 1 && /chunked\s|\tchunked|CHUNKED/.test(h)));
  });
}

// --- legitimate pipelining and framing ---
test('HTTP/1.0 keep-alive with Content-Length: 0 and a pipelined second request: both handled normally', async () => {
  const mark = up.seen.length;
  // /big/N answers with a Content-Length, so an HTTP/1.0 connection can stay open for the second response.
  const ex = await exchange(port,
    `POST /big/2 HTTP/1.0\r\n${H}Connection: keep-alive\r\nContent-Length: 0\r\n\r\n` +
    `GET /big/3 HTTP/1.0\r\n${H}\r\n`);
  const rs = finals(ex.responses);
  assert.deepEqual(rs.map((r) => [r.status, r.body]), [[200, 'aa'], [200, 'aaa']]);
  const seen = await canary(port, up, mark, 'http/1.0 pipelined');
  assert.deepEqual(seen.map((s) => `${s.method} ${s.url}`), ['POST /big/2', 'GET /big/3']);
});

test('a request hidden in a body is body: bytes are framed by Content-Length', async () => {
  const mark = up.seen.length;
  const ex = await exchange(port, `POST /outer HTTP/1.1\r\n${H}Content-Length: ${INNER.length}\r\nConnection: close\r\n\r\n${INNER}`);
  assert.equal(finals(ex.responses)[0]?.status, 200);
  const seen = await canary(port, up, mark, 'inner in body');
  assert.deepEqual(seen.map((s) => `${s.method} ${s.url}`), ['POST /outer']);
  assert.equal(seen[0]!.body, INNER, 'the upstream got the bytes as the body');
  assert.equal(seen[0]!.headers['content-length'], String(INNER.length));
});

test('bytes past Content-Length are the next request, exactly as the gateway answered it', async () => {
  const mark = up.seen.length;
  const ex = await exchange(port,
    `POST /first HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nhello` +
    `GET /second HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
  assert.deepEqual(finals(ex.responses).map((r) => r.status), [200, 200]);
  const seen = await canary(port, up, mark, 'pipelined after CL');
  assert.deepEqual(seen.map((s) => `${s.method} ${s.url} ${s.body}`), ['POST /first hello', 'GET /second ']);
});

test('a Content-Length that promises more than is sent is waited for, never cut into a second request', async () => {
  const mark = up.seen.length;
  // 100 bytes announced, the "request" inside is shorter: the gateway must keep reading body, not parse /inner.
  const ex = await exchange(port, `POST /short HTTP/1.1\r\n${H}Content-Length: 100\r\n\r\n${INNER}`, { idleMs: 300 });
  assert.equal(finals(ex.responses).length, 0, 'no answer before the body is complete');
  const seen = await canary(port, up, mark, 'lying CL');
  assert.ok(!seen.some((s) => s.url === '/inner'), 'the upstream never saw /inner as a request');
});

test('GET with a Content-Length body is forwarded with its body (policy: bodies are framed, not judged by method)', async () => {
  const mark = up.seen.length;
  const ex = await exchange(port,
    `GET /with-body HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nhello` +
    `GET /after HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
  assert.deepEqual(finals(ex.responses).map((r) => r.status), [200, 200]);
  const seen = await canary(port, up, mark, 'GET with body');
  assert.deepEqual(seen.map((s) => `${s.method} ${s.url} ${s.body}`), ['GET /with-body hello', 'GET /after ']);
  assert.equal(seen[0]!.headers['content-length'], '5');
});

test('absolute-form target with the same authority as Host is accepted and sent upstream in origin-form', async () => {
  const mark = up.seen.length;
  const ex = await exchange(port, `GET http://GW.test/abs?q=1 HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n`);
  assert.equal(finals(ex.responses)[0]?.status, 200);
  const seen = await canary(port, up, mark, 'absolute-form');
  assert.deepEqual(seen.map((s) => s.url), ['/abs?q=1']);
});

test('TRACE is refused with 405 (framing is fine, so a pipelined request still works)', async () => {
  const mark = up.seen.length;
  const ex = await exchange(port, `TRACE /t HTTP/1.1\r\n${H}\r\nGET /after-trace HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
  const rs = finals(ex.responses);
  assertProblem(rs[0]!, 405);
  assert.equal(rs[1]?.status, 200);
  const seen = await canary(port, up, mark, 'trace');
  assert.deepEqual(seen.map((s) => `${s.method} ${s.url}`), ['GET /after-trace']);
});

test('CONNECT is refused with a problem+json 405 and the connection closed', async () => {
  const mark = up.seen.length;
  const ex = await exchange(port, `CONNECT gw.test:443 HTTP/1.1\r\nHost: gw.test:443\r\n\r\n${INNER}`);
  assert.equal(ex.closed, true);
  assertProblem(finals(ex.responses)[0]!, 405);
  assert.deepEqual(await canary(port, up, mark, 'connect'), []);
});

test('Expect other than 100-continue: problem+json 417, nothing forwarded', async () => {
  const mark = up.seen.length;
  const ex = await exchange(port, `POST /expect HTTP/1.1\r\n${H}Expect: teapot\r\nContent-Length: 0\r\n\r\n`);
  assertProblem(finals(ex.responses)[0]!, 417);
  assert.equal(ex.closed, true);
  assert.deepEqual(await canary(port, up, mark, 'expect other'), []);
});

test('Expect: 100-continue: 100 first, then the body is forwarded without the Expect header', async () => {
  const mark = up.seen.length;
  const s = net.connect(port, '127.0.0.1');
  let text = '';
  const sawContinue = new Promise<void>((resolve, reject) => {
    s.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      if (text.includes('\r\n\r\n') && text.startsWith('HTTP/1.1 100 Continue')) resolve();
      else if (!text.startsWith('HTTP/1.1 100')) reject(new Error(`expected 100 Continue first, got ${JSON.stringify(text)}`));
    });
    s.on('error', reject);
  });
  const closed = new Promise<void>((resolve) => s.on('close', () => resolve()));
  s.write(`POST /continue HTTP/1.1\r\n${H}Expect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n`);
  await sawContinue;
  s.write('hello');
  await closed;
  const rs = finals(parseResponses(text));
  assert.equal(rs[0]?.status, 200);
  const seen = await canary(port, up, mark, '100-continue');
  assert.deepEqual(seen.map((x) => `${x.method} ${x.url} ${x.body}`), ['POST /continue hello']);
  assert.equal(seen[0]!.headers.expect, undefined);
});

test('a parse error while a response is streaming never injects a second response head', async () => {
  const mark = up.seen.length;
  const s = net.connect(port, '127.0.0.1');
  await once(s, 'connect');
  const chunks: Buffer[] = [];
  const closed = once(s, 'close');
  s.on('error', () => { /* the gateway may reset: fine */ });
  const size = 20 * 1024 * 1024; // far more than the socket buffers: the response stays in flight while we do not read
  const headSeen = new Promise<void>((resolve) => {
    const onData = (c: Buffer) => {
      chunks.push(c);
      if (Buffer.concat(chunks).includes('\r\n\r\n')) {
        s.off('data', onData);
        s.pause();
        resolve();
      }
    };
    s.on('data', onData);
  });
  s.write(`GET /big/${size} HTTP/1.1\r\n${H}\r\n`);
  await headSeen;
  s.write('\x00garbage\r\n\r\n'); // the parser fails on this while the 20 MiB response is being written
  s.on('data', (c: Buffer) => chunks.push(c));
  s.resume();
  await closed;
  const text = Buffer.concat(chunks).toString('latin1');
  assert.equal(text.match(/HTTP\/1\.[01] \d{3} /g)?.length, 1, 'one response head only');
  assert.ok(text.startsWith('HTTP/1.1 200 '));
  assert.ok(text.length < size, 'the in-flight response was cut, not completed and followed by a 400');
  await canary(port, up, mark, 'parse error mid-response');
});
