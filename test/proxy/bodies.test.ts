// Bodies stream through intact both ways, with and without a length, and a client that stops reading
// holds the upstream back (backpressure) instead of making the gateway buffer the response.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { startGateway, config, client } from '../helpers/gateway.js';
import { startScripted, type ScriptHandler } from '../helpers/servers.js';
import { waitStable, within } from '../helpers/wait.js';

const MB = 1024 * 1024;
const sha = (b: Buffer | Buffer[]) => { const h = createHash('sha256'); for (const x of Array.isArray(b) ? b : [b]) h.update(x); return h.digest('hex'); };
const payload = randomBytes(5 * MB);
const payloadHash = sha(payload);

// Streaming source for the backpressure test: BLOCK repeated, written only as fast as the socket drains.
const BLOCK = randomBytes(256 * 1024);
const BIG_BLOCKS = 256; // 64 MB: far beyond what socket buffers on the way can hold
let written = 0;
let finished = false;
const stream: ScriptHandler = (_req, res) => {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BLOCK.length * BIG_BLOCKS });
  let i = 0;
  const pump = () => {
    while (i < BIG_BLOCKS) {
      i++;
      written += BLOCK.length;
      if (!res.write(BLOCK)) { res.once('drain', pump); return; }
    }
    finished = true;
    res.end();
  };
  pump();
};
const up = await startScripted('bodies', (req, res, rec) => {
  if (req.url === '/download') { res.writeHead(200, { 'content-type': 'application/octet-stream' }); res.end(payload); return; }
  if (req.url === '/stream') return stream(req, res, rec);
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ length: rec.bodyLength, sha256: rec.bodySha256, te: rec.headers['transfer-encoding'] ?? null }));
});
const { gw, base, port } = await startGateway(config({
  upstreams: { up: { targets: [{ url: up.url }], timeouts: { totalMs: 30_000 } } },
  routes: [
    { id: 'small', match: { pathPrefix: '/small' }, upstream: 'up', limits: { maxBodyBytes: 1024 * 1024 } },
    { id: 'all', match: { pathPrefix: '/' }, upstream: 'up' },
  ],
}));
after(async () => { await gw.close(0); await up.close(); });

test('a 5 MB request body with Content-Length arrives intact', async () => {
  const r = await request(`${base}/upload`, { method: 'POST', body: payload, dispatcher: client });
  assert.equal(r.statusCode, 200);
  const got = await r.body.json() as { length: number; sha256: string };
  assert.equal(got.length, payload.length);
  assert.equal(got.sha256, payloadHash);
});

test('a 5 MB chunked request body (no Content-Length) arrives intact', async () => {
  async function* chunks() {
    for (let off = 0; off < payload.length; off += 64 * 1024) {
      yield payload.subarray(off, off + 64 * 1024);
      if (off % (1024 * 1024) === 0) await new Promise((r) => setImmediate(r));
    }
  }
  for (let round = 0; round < 3; round++) {
    const r = await request(`${base}/upload`, { method: 'POST', body: Readable.from(chunks()), dispatcher: client });
    assert.equal(r.statusCode, 200);
    const got = await r.body.json() as { length: number; sha256: string; te: string | null };
    assert.equal(got.length, payload.length, `round ${round}`);
    assert.equal(got.sha256, payloadHash, `round ${round}`);
  }
});

test('a 5 MB response body arrives intact', async () => {
  const r = await request(`${base}/download`, { dispatcher: client });
  assert.equal(r.statusCode, 200);
  const buf = Buffer.from(await r.body.arrayBuffer());
  assert.equal(buf.length, payload.length);
  assert.equal(sha(buf), payloadHash);
});

test('a client that stops reading stalls the upstream (backpressure), and the body is still intact after', async () => {
  const r = await request(`${base}/stream`, { dispatcher: client });
  assert.equal(r.statusCode, 200);
  // Nobody reads r.body: the upstream must get stuck well before the end.
  const stalledAt = await waitStable(() => written, { intervalMs: 50, stableFor: 4, timeoutMs: 10_000 });
  const total = BLOCK.length * BIG_BLOCKS;
  assert.ok(!finished && stalledAt < total * 0.6, `upstream wrote ${stalledAt} of ${total} bytes although the client read nothing`);

  const h = createHash('sha256');
  let n = 0;
  await within((async () => { for await (const c of r.body) { h.update(c as Buffer); n += (c as Buffer).length; } })(), 20_000, 'reading the body');
  assert.equal(n, total);
  assert.equal(h.digest('hex'), sha(new Array<Buffer>(BIG_BLOCKS).fill(BLOCK)));
  assert.ok(finished);
});

/**
 * Streams `body` as a chunked request on a raw socket, as fast as the socket drains, and keeps going until
 * the server closes; resolves with every byte the server sent and how the connection ended. A raw socket,
 * not an HTTP client: a client library may report a write error (EPIPE, ECONNRESET) instead of an early
 * response it has not parsed yet; here the bytes on the wire are what is checked.
 */
function chunkedUpload(path: string, body: Buffer): Promise<{ reply: string; sent: number; ended: string[] }> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const got: Buffer[] = [];
    const ended: string[] = [];
    let off = 0;
    s.on('connect', () => {
      s.write(`POST ${path} HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n`);
      const pump = (): void => {
        while (off < body.length && !s.destroyed) {
          const c = body.subarray(off, off + 64 * 1024);
          off += c.length;
          s.write(`${c.length.toString(16)}\r\n`);
          s.write(c);
          if (!s.write('\r\n')) { s.once('drain', pump); return; }
        }
        if (!s.destroyed) s.write('0\r\n\r\n');
      };
      pump();
    });
    s.on('data', (d: Buffer) => got.push(d));
    s.on('end', () => ended.push('FIN'));
    s.on('error', (e: NodeJS.ErrnoException) => ended.push(e.code ?? 'error'));
    s.on('close', () => resolve({ reply: Buffer.concat(got).toString('latin1'), sent: off, ended }));
  });
}

test('a chunked body over the route limit is cut off with 413 and never arrives whole', async () => {
  const before = up.seen.length;
  const { reply, ended } = await chunkedUpload('/small/upload', payload);
  // The gateway answers 413 (and closes: the rest of the body is never read). The client may see its
  // later writes fail (the gateway closed), but only after the answer arrived.
  assert.match(reply, /^HTTP\/1\.1 413 /, `no 413 status line (connection ended: ${ended.join(', ')}): ${JSON.stringify(reply.slice(0, 200))}`);
  assert.match(reply, /\r\nconnection: close\r\n/i);
  assert.match(reply, /"type":"https:\/\/portcullis\.dev\/problems\/body-too-large"/);
  assert.equal(reply.match(/HTTP\/1\.1 /g)?.length, 1, 'exactly one response');
  for (const rec of up.seen.slice(before)) assert.ok(rec.bodyLength <= 1024 * 1024 + 64 * 1024, `upstream got ${rec.bodyLength} bytes`);
  // The upstream is not blamed for the client's oversized body.
  const r = await request(`${base}/upload`, { method: 'POST', body: 'ok', dispatcher: client });
  assert.equal(r.statusCode, 200);
  await r.body.dump();
});
