// Listener limits on real sockets: header bytes and count, URL length, body size (up front and while
// streaming), slowloris and slow-body timeouts, connection caps, and the route-level body limit.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { startUpstream } from '../helpers/upstream.js';
import { startGateway, config } from '../helpers/gateway.js';
import type { GatewayConfig } from '../../src/config/schema.js';
import { exchange, finals, assertProblem, canary, parseResponses } from './wire.js';

const LIMITS = {
  maxHeaderBytes: 2048,
  maxHeaderCount: 20,
  maxUrlLength: 256,
  maxBodyBytes: 1000,
  headersTimeoutMs: 500,
  requestTimeoutMs: 1000,
};
// Node checks header/request timeouts on this period (listener.ts connectionsCheckingInterval).
const CHECK_INTERVAL_MS = 1000;
// Every test is bounded: a hang is a failure, not a stuck run.
const T = { timeout: 15_000 };

const up = await startUpstream('a');
// Default passive health checking: client-side failures below must never eject the target.
const upstreams: GatewayConfig['upstreams'] = { a: { targets: [{ url: up.url }] } };
const { gw, port } = await startGateway({
  listeners: [{ name: 'main', address: '127.0.0.1', port: 0, limits: LIMITS }],
  upstreams,
  routes: [
    { id: 'small', match: { pathPrefix: '/small' }, upstream: 'a', limits: { maxBodyBytes: 10 } },
    { id: 'large', match: { pathPrefix: '/large' }, upstream: 'a', limits: { maxBodyBytes: 5000 } },
    { id: 'all', match: { pathPrefix: '/' }, upstream: 'a' },
  ],
});
after(async () => { await gw.close(0); await up.close(); });

const H = 'Host: gw.test\r\n';
const INNER = 'GET /inner HTTP/1.1\r\nHost: gw.test\r\n\r\n';

async function refused(bytes: string, status: number, tag: string): Promise<void> {
  const mark = up.seen.length;
  const ex = await exchange(port, bytes);
  assert.equal(ex.closed, true, 'connection closed');
  const r = finals(ex.responses)[0];
  assert.ok(r !== undefined, `a response (got ${JSON.stringify(ex.text.slice(0, 200))})`);
  assertProblem(r, status);
  assert.equal(r.header('connection'), 'close');
  assert.deepEqual((await canary(port, up, mark, tag)).map((s) => s.url), [], 'nothing reached the upstream');
}

test('431 for a request head larger than maxHeaderBytes (parser path)', T, async () => {
  await refused(`GET /x HTTP/1.1\r\n${H}X-Big: ${'b'.repeat(3000)}\r\n\r\n`, 431, 'header bytes');
});

test('431 for a request line longer than maxHeaderBytes (the head limit comes first)', T, async () => {
  await refused(`GET /${'u'.repeat(3000)} HTTP/1.1\r\n${H}\r\n`, 431, 'huge url');
});

test('431 for more than maxHeaderCount header fields (handler path)', T, async () => {
  let hs = '';
  for (let i = 0; i < 25; i++) hs += `X-H${i}: ${i}\r\n`;
  await refused(`GET /x HTTP/1.1\r\n${H}${hs}\r\n${INNER}`, 431, 'header count');
});

test('exactly maxHeaderCount header fields are accepted', T, async () => {
  let hs = '';
  for (let i = 0; i < LIMITS.maxHeaderCount - 2; i++) hs += `X-H${i}: ${i}\r\n`;
  const ex = await exchange(port, `GET /count-ok HTTP/1.1\r\n${H}${hs}Connection: close\r\n\r\n`);
  assert.equal(finals(ex.responses)[0]?.status, 200);
});

test('414 for a target longer than maxUrlLength', T, async () => {
  await refused(`GET /${'u'.repeat(300)} HTTP/1.1\r\n${H}\r\n${INNER}`, 414, 'long url');
});

test('413 for a Content-Length over maxBodyBytes, decided before any byte is forwarded', T, async () => {
  const body = INNER.padEnd(2000, 'x');
  await refused(`POST /x HTTP/1.1\r\n${H}Content-Length: ${body.length}\r\n\r\n${body}`, 413, 'CL over limit');
});

// A body refused while streaming cannot recall requests pipelined behind it that Node has already parsed
// (they are well framed, so that is not smuggling); these tests send none.
test('413 for a chunked body that crosses maxBodyBytes within one read', T, async () => {
  const mark = up.seen.length;
  const chunk = `258\r\n${'y'.repeat(600)}\r\n`; // 0x258 = 600 bytes
  const ex = await exchange(port, `POST /stream HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n${chunk}${chunk}0\r\n\r\n`);
  assert.equal(ex.closed, true);
  const r = finals(ex.responses)[0];
  if (r !== undefined) assertProblem(r, 413);
  const seen = await canary(port, up, mark, 'chunked over limit at once');
  assert.deepEqual(seen.map((x) => x.url), [], 'the upstream never completed the over-limit request');
});

test('413 (or a cut connection) for a chunked body that grows past maxBodyBytes while the upstream exchange is open', T, async () => {
  // A fresh upstream, so its first connection is the gateway dispatching this very request.
  const u = await startUpstream('stream');
  const g = await startGateway(config({
    listeners: [{ name: 'main', address: '127.0.0.1', port: 0, limits: { maxBodyBytes: 1000 } }],
    upstreams: { s: { targets: [{ url: u.url }] } },
    routes: [{ id: 'all', match: { pathPrefix: '/' }, upstream: 's' }],
  }));
  try {
    const s = net.connect(g.port, '127.0.0.1');
    await once(s, 'connect');
    let text = '';
    s.on('data', (c: Buffer) => { text += c.toString('latin1'); });
    s.on('error', () => { /* a reset is an acceptable way to refuse */ });
    const closed = once(s, 'close');
    const chunk = `258\r\n${'y'.repeat(600)}\r\n`; // 0x258 = 600 bytes
    const dispatched = once(u.server, 'connection');
    s.write(`POST /stream HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n`);
    await dispatched;
    const reachedUpstream = once(u.server, 'request');
    s.write(chunk); // under the limit: the upstream request starts
    await reachedUpstream;
    s.write(chunk); // 1200 > 1000
    s.write('0\r\n\r\n');
    await closed;
    const r = finals(parseResponses(text))[0];
    if (r !== undefined) assertProblem(r, 413);
    const seen = await canary(g.port, u, 0, 'chunked over limit streaming');
    assert.deepEqual(seen.map((x) => x.url), [], 'the upstream never completed the over-limit request');
  } finally {
    await g.gw.close(0);
    await u.close();
  }
});

test('route-level limits.maxBodyBytes overrides the listener limit, both ways', T, async () => {
  // smaller than the listener's
  await refused(`POST /small HTTP/1.1\r\n${H}Content-Length: 20\r\n\r\n${'z'.repeat(20)}`, 413, 'route smaller');
  // larger than the listener's
  const mark = up.seen.length;
  const body = 'w'.repeat(2000);
  const ex = await exchange(port, `POST /large HTTP/1.1\r\n${H}Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
  assert.equal(finals(ex.responses)[0]?.status, 200);
  const seen = await canary(port, up, mark, 'route larger');
  assert.deepEqual(seen.map((x) => [x.url, x.body.length]), [['/large', 2000]]);
  // and the same size elsewhere is still refused by the listener limit
  await refused(`POST /other HTTP/1.1\r\n${H}Content-Length: ${body.length}\r\n\r\n${body}`, 413, 'listener limit');
});

/** Drips `bytes` one at a time every `everyMs` until the server closes; resolves with what came back and when. */
async function drip(head: string, bytes: string, everyMs: number, deadlineMs: number): Promise<{ text: string; ms: number }> {
  const s = net.connect(port, '127.0.0.1');
  await once(s, 'connect');
  const start = performance.now();
  let text = '';
  s.on('data', (c: Buffer) => { text += c.toString('latin1'); });
  s.on('error', () => { /* reset by the gateway: fine */ });
  s.write(head);
  let i = 0;
  const timer = setInterval(() => { if (!s.destroyed && s.writable) s.write(bytes[i++ % bytes.length]!); }, everyMs);
  const deadline = setTimeout(() => s.destroy(new Error('deadline')), deadlineMs);
  try {
    await new Promise<void>((resolve) => s.once('close', () => resolve()));
  } finally {
    clearInterval(timer);
    clearTimeout(deadline);
  }
  return { text, ms: performance.now() - start };
}

test('slowloris: a head sent one byte at a time is cut after headersTimeout (408 or close)', T, async () => {
  const mark = up.seen.length;
  const bound = LIMITS.headersTimeoutMs + CHECK_INTERVAL_MS + 1000;
  const { text, ms } = await drip(`GET /slow HTTP/1.1\r\n${H}X-Drip: `, 'abcdefgh', 50, bound + 2000);
  assert.ok(ms >= LIMITS.headersTimeoutMs - 50, `not cut before the timeout (${ms.toFixed(0)} ms)`);
  assert.ok(ms <= bound, `cut within headersTimeout + check interval (${ms.toFixed(0)} ms)`);
  const r = finals(parseResponses(text))[0];
  if (r !== undefined) assertProblem(r, 408);
  assert.deepEqual((await canary(port, up, mark, 'slowloris')).map((x) => x.url), []);
});

test('a body trickling past requestTimeout is cut (408 or close) and never completes upstream', T, async () => {
  const mark = up.seen.length;
  const bound = LIMITS.requestTimeoutMs + CHECK_INTERVAL_MS + 1000;
  const { text, ms } = await drip(`POST /trickle HTTP/1.1\r\n${H}Content-Length: 200\r\n\r\n`, 'q', 50, bound + 2000);
  assert.ok(ms >= LIMITS.requestTimeoutMs - 50, `not cut before the timeout (${ms.toFixed(0)} ms)`);
  assert.ok(ms <= bound, `cut within requestTimeout + check interval (${ms.toFixed(0)} ms)`);
  const r = finals(parseResponses(text))[0];
  if (r !== undefined) assertProblem(r, 408);
  const seen = await canary(port, up, mark, 'trickle');
  assert.deepEqual(seen.map((x) => x.url), [], 'the upstream never got a complete request');
});

// ---------------------------------------------------------------- connection caps

/** An open keep-alive connection that has completed one request (so the server has certainly counted it). */
async function openServed(p: number, path: string): Promise<net.Socket> {
  const s = net.connect(p, '127.0.0.1');
  await once(s, 'connect');
  await request(s, path);
  return s;
}

/** One keep-alive request on an open socket; resolves with its status. */
function request(s: net.Socket, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (c: Buffer) => {
      text += c.toString('latin1');
      const r = finals(parseResponses(text))[0];
      if (r !== undefined) { cleanup(); resolve(r.status); }
    };
    const onClose = () => { cleanup(); reject(new Error(`closed before a response (${JSON.stringify(text)})`)); };
    const cleanup = () => { s.off('data', onData); s.off('close', onClose); };
    s.on('data', onData);
    s.on('close', onClose);
    s.write(`GET ${path} HTTP/1.1\r\n${H}\r\n`);
  });
}

/** A new connection that the gateway refuses: closed with no response bytes. */
async function assertRefusedConnection(p: number): Promise<void> {
  const ex = await exchange(p, `GET /refused HTTP/1.1\r\n${H}\r\n`);
  assert.equal(ex.closed, true, 'closed by the gateway');
  assert.equal(ex.text, '', 'no response on a refused connection');
}

/** After a slot frees up, a new connection works (the server notices the close asynchronously). */
async function eventuallyServed(p: number, tries = 50): Promise<void> {
  for (let i = 0; i < tries; i++) {
    const ex = await exchange(p, `GET /again HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
    if (finals(ex.responses)[0]?.status === 200) return;
  }
  assert.fail('no connection was accepted after a slot was freed');
}

async function capGateway(limits: Record<string, number>) {
  return startGateway(config({
    listeners: [{ name: 'main', address: '127.0.0.1', port: 0, limits }],
    upstreams,
    routes: [{ id: 'all', match: { pathPrefix: '/' }, upstream: 'a' }],
  }));
}

test('maxConnectionsPerIp: the 4th concurrent connection from one IP is closed, the first 3 keep working', T, async () => {
  const g = await capGateway({ maxConnectionsPerIp: 3 });
  const socks: net.Socket[] = [];
  try {
    for (let i = 0; i < 3; i++) socks.push(await openServed(g.port, `/ip/${i}`));
    await assertRefusedConnection(g.port);
    for (const s of socks) assert.equal(await request(s, '/ip/still'), 200);
    const first = socks.shift()!;
    first.destroy();
    await eventuallyServed(g.port);
  } finally {
    for (const s of socks) s.destroy();
    await g.gw.close(0);
  }
});

test('maxConnections: connections past the listener cap are closed, the admitted ones keep working', T, async () => {
  const g = await capGateway({ maxConnections: 2 });
  const socks: net.Socket[] = [];
  try {
    for (let i = 0; i < 2; i++) socks.push(await openServed(g.port, `/conn/${i}`));
    await assertRefusedConnection(g.port);
    for (const s of socks) assert.equal(await request(s, '/conn/still'), 200);
    socks.shift()!.destroy();
    await eventuallyServed(g.port);
  } finally {
    for (const s of socks) s.destroy();
    await g.gw.close(0);
  }
});

// ---------------------------------------------------------------- body framing towards the upstream

test('a chunked body that arrives in the same segment as the head is forwarded intact', T, async () => {
  const mark = up.seen.length;
  const ex = await exchange(port, `POST /chunked HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n`);
  assert.equal(finals(ex.responses)[0]?.status, 200);
  const seen = await canary(port, up, mark, 'chunked intact');
  assert.deepEqual(seen.map((x) => `${x.url} ${x.body}`), ['/chunked hello world']);
});

test('clients that break their own request body do not eject the upstream target', T, async () => {
  const u = await startUpstream('b');
  const g = await startGateway(config({
    upstreams: { b: { targets: [{ url: u.url }], healthCheck: { passive: { consecutiveFailures: 2 } } } },
    routes: [{ id: 'all', match: { pathPrefix: '/' }, upstream: 'b' }],
  }));
  try {
    for (let i = 0; i < 4; i++) {
      const s = net.connect(g.port, '127.0.0.1');
      await once(s, 'connect');
      s.on('error', () => { /* reset: fine */ });
      s.resume(); // read to EOF, so the gateway's close is seen
      const reached = once(u.server, 'request');
      s.write(`POST /broken/${i} HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n`);
      await reached; // the upstream exchange is open
      const closed = once(s, 'close');
      if (i % 2 === 0) s.write('zz\r\n'); // not a chunk size: the gateway's parser fails mid-body
      else s.destroy(); // or the client just goes away
      await closed;
    }
    assert.deepEqual(await canary(g.port, u, 0, 'still healthy'), [], 'no broken request completed upstream');
  } finally {
    await g.gw.close(0);
    await u.close();
  }
});
