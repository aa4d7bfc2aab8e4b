// HTTP/2 on an HTTPS listener, through the whole pipeline to a real upstream: the same handler as
// HTTP/1.1 (pseudo-headers, :authority as Host, bodies without Content-Length, cookie crumbs), no
// connection-specific headers in h2 responses, limits (header list size and count), CONNECT, and the
// rapid-reset defence (raw frames: HEADERS + RST_STREAM bursts).
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import tls from 'node:tls';
import { makePki, type Pki } from '../helpers/certs.js';
import { startTlsGateway, memoryLogger, type TlsGateway } from './helpers.js';
import type { EchoReply } from '../helpers/upstream.js';
import { httpsGet } from './helpers.js';
import { scaled } from '../helpers/wait.js';

let pki: Pki;
let g: TlsGateway;
let log: ReturnType<typeof memoryLogger>;
before(async () => {
  pki = makePki();
  log = memoryLogger();
  g = await startTlsGateway({ certificates: [{ cert: pki.server.cert, key: pki.server.key }] }, { logger: log.logger, listener: { http2: { maxResetsPerSecond: 100 } } });
});
after(() => g.close());

interface H2Response { status: number; headers: http2.IncomingHttpHeaders; body: string }

function connect(): http2.ClientHttp2Session {
  const s = http2.connect(`https://localhost:${g.port}`, { ca: pki.ca.certPem });
  s.on('error', () => undefined);
  return s;
}

function h2(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: string): Promise<H2Response> {
  return new Promise((resolve, reject) => {
    const req = session.request(headers, { endStream: body === undefined });
    let status = 0;
    let resHeaders: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    req.on('response', (h) => { status = Number(h[':status']); resHeaders = h; });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve({ status, headers: resHeaders, body: Buffer.concat(chunks).toString() }));
    req.on('error', reject);
    req.setTimeout(5000, () => req.close(http2.constants.NGHTTP2_CANCEL));
    if (body !== undefined) req.end(body);
  });
}

describe('requests over h2', () => {
  let s: http2.ClientHttp2Session;
  before(() => { s = connect(); });
  after(() => { s.close(); });

  test('GET reaches the upstream with HTTP/1-shaped headers; the h2 response has no connection-specific headers', async () => {
    const r = await h2(s, { ':path': '/echo?q=1', 'x-custom': 'v', 'x-forwarded-for': '6.6.6.6' });
    assert.equal(s.alpnProtocol, 'h2');
    assert.equal(r.status, 200);
    const seen = JSON.parse(r.body) as EchoReply;
    assert.equal(seen.method, 'GET');
    assert.equal(seen.url, '/echo?q=1');
    // :authority was the Host the gateway routed on and reports; the upstream gets its own host (no preserveHost).
    assert.equal(seen.headers.host, new URL(g.upstream.url).host);
    assert.equal(seen.headers['x-custom'], 'v');
    assert.equal(seen.headers['x-forwarded-proto'], 'https');
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen.headers['x-forwarded-host'], `localhost:${g.port}`);
    assert.ok(seen.rawHeaders.every((h, i) => i % 2 === 1 || !h.startsWith(':')), `pseudo-header forwarded: ${seen.rawHeaders.join(',')}`);
    for (const h of ['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection']) assert.equal(r.headers[h], undefined, h);
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    assert.equal(r.headers.server, undefined);
  });

  test('request bodies: DATA frames without Content-Length, and with it', async () => {
    const chunked = await h2(s, { ':method': 'POST', ':path': '/upload', 'content-type': 'text/plain' }, 'hello over h2');
    assert.equal(chunked.status, 200);
    assert.equal((JSON.parse(chunked.body) as EchoReply).body, 'hello over h2');
    const sized = await h2(s, { ':method': 'PUT', ':path': '/upload', 'content-length': '5' }, 'abcde');
    assert.equal(sized.status, 200);
    const seen = JSON.parse(sized.body) as EchoReply;
    assert.equal(seen.body, 'abcde');
    assert.equal(seen.headers['content-length'], '5');
  });

  test('cookie crumbs are joined into one Cookie header for the HTTP/1.1 upstream', async () => {
    const r = await h2(s, { ':path': '/c', cookie: ['a=1', 'b=2'] });
    const seen = JSON.parse(r.body) as EchoReply;
    assert.equal(seen.headers.cookie, 'a=1; b=2');
    assert.equal(seen.rawHeaders.filter((h, i) => i % 2 === 0 && h.toLowerCase() === 'cookie').length, 1);
  });

  test('a Host header that differs from :authority is refused', async () => {
    const r = await h2(s, { ':path': '/', ':authority': `localhost:${g.port}`, host: 'evil.example' });
    assert.equal(r.status, 400);
    assert.match(r.headers['content-type'] as string, /problem\+json/);
    // a refusal does not condemn the connection: the next stream is served
    assert.equal((await h2(s, { ':path': '/after-refusal' })).status, 200);
  });

  test('upstream errors become problem documents; statuses pass through', async () => {
    const r = await h2(s, { ':path': '/status/500' });
    assert.equal(r.status, 500);
    assert.doesNotMatch(r.body, /secretFunction/);
    const nf = await h2(s, { ':path': '/status/404' });
    assert.equal(nf.status, 404);
  });

  test('CONNECT is refused with 405, the session stays usable', async () => {
    const r = await h2(s, { ':method': 'CONNECT', ':authority': 'example.com:443' });
    assert.equal(r.status, 405);
    assert.equal((await h2(s, { ':path': '/x' })).status, 200);
  });

  test('more header fields than maxHeaderCount get 431 from the handler', async () => {
    const headers: http2.OutgoingHttpHeaders = { ':path': '/many' };
    for (let i = 0; i < 101; i++) headers[`x-h${i}`] = 'v';
    const r = await h2(s, headers);
    assert.equal(r.status, 431);
  });

  test('a header list above maxHeaderListSize is refused (stream reset), other streams unaffected', async () => {
    const r = await h2(s, { ':path': '/huge', 'x-big': 'a'.repeat(20_000) }).then(() => 'answered', (e: NodeJS.ErrnoException) => e.message);
    assert.match(r, /ENHANCE_YOUR_CALM|REFUSED|PROTOCOL/);
    const s2 = connect();
    try { assert.equal((await h2(s2, { ':path': '/ok' })).status, 200); } finally { s2.close(); }
  });
});

test('HTTP/1.1 on the same listener (ALPN http/1.1)', async () => {
  const r = await httpsGet(g.port, '/h1', pki.ca.certPem);
  assert.equal(r.status, 200);
  assert.equal(r.alpn, 'http/1.1');
  assert.equal((JSON.parse(r.body) as EchoReply).headers['x-forwarded-host'], `127.0.0.1:${g.port}`);
});

// ---------------------------------------------------------------- rapid reset (raw frames)

const frame = (type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer => {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
};

function requestHeaders(authority: string): Buffer {
  // HPACK: :method GET (2), :scheme https (7), :path / (4) indexed; :authority literal without indexing (name index 1).
  return Buffer.concat([Buffer.from([0x82, 0x87, 0x84, 0x01, authority.length]), Buffer.from(authority)]);
}

interface RawH2 { socket: tls.TLSSocket; goaway: Promise<number | 'closed'>; ping(): Promise<void> }

/** An h2 connection that writes raw frames; resolves `goaway` with the GOAWAY error code (or 'closed'). */
async function rawH2(port: number): Promise<RawH2> {
  const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ALPNProtocols: ['h2'], rejectUnauthorized: false });
  await new Promise<void>((resolve, reject) => { socket.once('secureConnect', resolve); socket.once('error', reject); });
  assert.equal(socket.alpnProtocol, 'h2');
  socket.on('error', () => undefined);
  let buf = Buffer.alloc(0);
  let onGoaway: (c: number | 'closed') => void = () => undefined;
  const pings: (() => void)[] = [];
  const goaway = new Promise<number | 'closed'>((resolve) => { onGoaway = resolve; });
  socket.on('close', () => onGoaway('closed'));
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 9) {
      const len = buf.readUIntBE(0, 3);
      if (buf.length < 9 + len) break;
      const type = buf[3]!, flags = buf[4]!;
      const payload = buf.subarray(9, 9 + len);
      if (type === 7) onGoaway(payload.readUInt32BE(4));
      if (type === 6 && (flags & 1) === 1) pings.shift()?.();
      buf = buf.subarray(9 + len);
    }
  });
  socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(4, 0, 0)]));
  return {
    socket,
    goaway,
    ping: () => new Promise<void>((resolve) => { pings.push(resolve); socket.write(frame(6, 0, 0, Buffer.alloc(8))); }),
  };
}

function resetBurst(c: RawH2, count: number, firstStream: number): void {
  const frames: Buffer[] = [];
  const hdr = requestHeaders(`localhost:${g.port}`);
  const cancel = Buffer.alloc(4);
  cancel.writeUInt32BE(http2.constants.NGHTTP2_CANCEL);
  for (let i = 0; i < count; i++) {
    const id = firstStream + 2 * i;
    frames.push(frame(1, 0x4, id, hdr), frame(3, 0, id, cancel)); // HEADERS (END_HEADERS, no END_STREAM), RST_STREAM
  }
  c.socket.write(Buffer.concat(frames));
}

test('a request with Host and no :authority is routed on Host', async () => {
  const s = connect();
  try {
    const r = await h2(s, { ':path': '/h', host: 'portcullis.test' });
    assert.equal(r.status, 200);
    assert.equal((JSON.parse(r.body) as EchoReply).headers['x-forwarded-host'], 'portcullis.test');
  } finally { s.close(); }
});

test('rapid reset: a burst of cancelled streams closes that connection with GOAWAY, logged; others are served', async () => {
  // Below the limit (100/s here, lower than the default 200/s so that a busy machine, which processes the
  // attacker's frames more slowly, still sees more than the limit within one second): nothing happens; the
  // PING answer shows the frames were processed.
  const calm = await rawH2(g.port);
  resetBurst(calm, 50, 1);
  await calm.ping();
  assert.equal(log.lines.some((l) => l.event === 'http2-rapid-reset'), false);
  calm.socket.destroy();

  const attacker = await rawH2(g.port);
  const other = connect();
  try {
    resetBurst(attacker, 600, 1);
    const code = await Promise.race([attacker.goaway, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), scaled(30_000)).unref())]);
    assert.equal(code, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
    const line = log.lines.find((l) => l.event === 'http2-rapid-reset');
    assert.ok(line, 'security event logged');
    assert.equal(line.client_ip, '127.0.0.1');
    assert.equal(line.level, 40);
    // The gateway keeps serving other clients.
    assert.equal((await h2(other, { ':path': '/still-here' })).status, 200);
  } finally {
    attacker.socket.destroy();
    other.close();
  }
});
