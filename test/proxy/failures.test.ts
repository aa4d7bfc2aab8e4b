// Upstream failures as the client sees them: unreachable, slow, reset, and 5xx with internals.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startGateway, config, get, client } from '../helpers/gateway.js';
import { startScripted, startRawUpstream, closedPort, type ScriptHandler } from '../helpers/servers.js';
import { within } from '../helpers/wait.js';

const STACK = 'Error: boom\n    at secretFunction (/srv/app/internal.js:42:13)';
const failing: ScriptHandler = (_req, res) => {
  res.writeHead(500, { 'content-type': 'text/plain', server: 'Apache/2.4.1 (Unix)', 'x-powered-by': 'PHP/5.2' });
  res.end(STACK);
};

const errors = await startScripted('errors', failing);
const slow = await startScripted('slow', (_req, res) => {
  const t = setTimeout(() => { res.writeHead(200); res.end('late'); }, 2000);
  res.on('close', () => clearTimeout(t));
});
// Sends the head and one chunk, then nothing: only the total timeout can end it.
const stalls = await startScripted('stalls', (_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.write('first chunk;');
});
const resets = await startScripted('resets', (req) => { req.socket.destroy(); });
// Announces 1000 bytes, sends 10, then drops the connection.
const truncates = await startRawUpstream((_head, socket) => {
  socket.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 1000\r\n\r\n0123456789');
  setImmediate(() => socket.destroy());
});
// Responses no parser should accept: ambiguous framing (response smuggling) or not HTTP at all.
const malformed = await startRawUpstream((head, socket) => {
  const path = head.split(' ')[1];
  if (path === '/malformed/cl-te') socket.end('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n');
  else if (path === '/malformed/cl-cl') socket.end('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!');
  else socket.end('SSH-2.0-OpenSSH_8.9\r\n\r\n');
});
const dead = await closedPort();

const noRetry = { attempts: 0 };
const { gw, base } = await startGateway(config({
  upstreams: {
    dead: { targets: [{ url: `http://127.0.0.1:${dead}` }] },
    errors: { targets: [{ url: errors.url }], retries: noRetry, healthCheck: { passive: { consecutiveFailures: 1000 } } },
    slow: { targets: [{ url: slow.url }], timeouts: { firstByteMs: 150 } },
    slowTotal: { targets: [{ url: slow.url }], timeouts: { firstByteMs: 5000, totalMs: 150 } },
    stalls: { targets: [{ url: stalls.url }], timeouts: { totalMs: 250 } },
    resets: { targets: [{ url: resets.url }] },
    truncates: { targets: [{ url: truncates.url }] },
    malformed: { targets: [{ url: malformed.url }] },
  },
  routes: [
    { id: 'dead', match: { pathPrefix: '/dead' }, upstream: 'dead' },
    { id: 'errors', match: { pathPrefix: '/errors' }, upstream: 'errors' },
    { id: 'errors-exposed', match: { pathPrefix: '/exposed' }, upstream: 'errors', exposeUpstreamErrors: true },
    { id: 'slow', match: { pathPrefix: '/slow' }, upstream: 'slow' },
    { id: 'slow-total', match: { pathPrefix: '/total' }, upstream: 'slowTotal' },
    { id: 'stalls', match: { pathPrefix: '/stalls' }, upstream: 'stalls' },
    { id: 'resets', match: { pathPrefix: '/resets' }, upstream: 'resets' },
    { id: 'truncates', match: { pathPrefix: '/truncates' }, upstream: 'truncates' },
    { id: 'malformed', match: { pathPrefix: '/malformed' }, upstream: 'malformed' },
  ],
}));
after(async () => {
  await gw.close(0);
  await Promise.all([errors.close(), slow.close(), stalls.close(), resets.close(), truncates.close(), malformed.close()]);
});

function assertProblem(r: Awaited<ReturnType<typeof get>>, status: number, code: string): Record<string, unknown> {
  assert.equal(r.status, status, r.body);
  assert.equal(r.headers['content-type'], 'application/problem+json');
  const p = r.json();
  assert.equal(p.status, status);
  assert.equal(p.type, `https://portcullis.dev/problems/${code}`);
  assert.equal(p.request_id, r.headers['x-request-id']);
  return p;
}

test('target down (connection refused) -> 502 problem+json', async () => {
  const r = await get(`${base}/dead/x`);
  assertProblem(r, 502, 'upstream-unreachable');
  assert.ok(!r.body.includes('ECONNREFUSED'), 'no socket error details leak');
  assert.ok(!r.body.includes(String(dead)), 'the upstream port does not leak');
});

test('upstream slower than firstByteMs -> 504, and not retried', async () => {
  const before = slow.arrived;
  const t0 = performance.now();
  const r = await get(`${base}/slow/x`);
  assertProblem(r, 504, 'upstream-timeout');
  assert.ok(performance.now() - t0 < 1500, 'answered at the first-byte timeout, not when the upstream finally answered');
  assert.equal(slow.arrived - before, 1, 'a timed-out request is not retried');
});

test('no response head before totalMs -> 504', async () => {
  const r = await get(`${base}/total/x`);
  assertProblem(r, 504, 'upstream-timeout');
});

test('totalMs expiring while the body streams cuts the client connection (no truncated "success")', async () => {
  const r = await request(`${base}/stalls/x`, { dispatcher: client });
  assert.equal(r.statusCode, 200);
  await assert.rejects(within(r.body.text(), 3000, 'body'), /terminated|aborted|other side closed|socket/i, 'the body must fail, not end cleanly');
});

test('connection reset by the upstream -> 502 problem+json', async () => {
  const before = resets.arrived;
  const r = await get(`${base}/resets/x`);
  assertProblem(r, 502, 'upstream-error');
  assert.equal(resets.arrived - before, 2, 'GET: one retry after a reset (default attempts: 1)');
});

test('upstream reset after the head: the client sees a broken response, not a short body', async () => {
  const r = await request(`${base}/truncates/x`, { dispatcher: client });
  assert.equal(r.statusCode, 200);
  await assert.rejects(within(r.body.text(), 3000, 'body'), /terminated|aborted|other side closed|socket/i);
});

test('upstream 500 with a stack trace -> problem+json without the body or Server/X-Powered-By', async () => {
  const r = await get(`${base}/errors/x`);
  const p = assertProblem(r, 500, 'upstream-error');
  assert.equal(p.title, 'Internal Server Error');
  assert.ok(!r.body.includes('secretFunction'));
  assert.ok(!r.body.includes('/srv/app'));
  assert.equal(r.headers.server, undefined);
  assert.equal(r.headers['x-powered-by'], undefined);
  assert.equal(r.headers['x-content-type-options'], 'nosniff');
});

test('HEAD to an upstream 500: problem head, no body', async () => {
  const r = await get(`${base}/errors/x`, { method: 'HEAD' });
  assert.equal(r.status, 500);
  assert.equal(r.body, '');
  assert.equal(r.headers.server, undefined);
});

test('the connection stays usable after a hidden 5xx (keep-alive)', async () => {
  for (let i = 0; i < 3; i++) assert.equal((await get(`${base}/errors/x`)).status, 500);
  const r = await get(`${base}/exposed/x`);
  assert.equal(r.status, 500);
});

test('exposeUpstreamErrors: true passes the 5xx body through (still without Server/X-Powered-By)', async () => {
  const r = await get(`${base}/exposed/x`);
  assert.equal(r.status, 500);
  assert.equal(r.body, STACK);
  assert.equal(r.headers['content-type'], 'text/plain');
  assert.equal(r.headers.server, undefined);
  assert.equal(r.headers['x-powered-by'], undefined);
  assert.ok(r.headers['x-request-id']);
});

test('malformed upstream responses (CL+TE, conflicting CL, not HTTP) -> 502, nothing of them relayed', async () => {
  for (const path of ['/malformed/cl-te', '/malformed/cl-cl', '/malformed/ssh']) {
    const r = await get(`${base}${path}`);
    assertProblem(r, 502, 'upstream-error');
    assert.ok(!r.body.includes('hello') && !r.body.includes('SSH'), path);
  }
});
