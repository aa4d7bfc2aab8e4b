// SIGTERM after loops of short-lived TLS connections, with handshakes still stalled: the node (2 workers)
// exits within shutdownTimeoutMs plus a little, never waiting for the primary's SIGKILL 5 s later.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makePki } from '../helpers/certs.js';
import { startUpstream } from '../helpers/upstream.js';
import { spawnGateway } from '../helpers/process.js';

const up = await startUpstream('a');
const dir = await mkdtemp(join(tmpdir(), 'portcullis-tls-stop-'));
const pki = makePki(dir);
after(async () => { await up.close(); await rm(dir, { recursive: true, force: true }); });

const SHUTDOWN_MS = 2000;

/** One short TLS connection: handshake, one request with `connection: close`, read to the end. */
function shortTls(port: number): Promise<void> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => {
      s.write('GET /x HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n');
    });
    s.resume();
    s.setTimeout(5000, () => s.destroy());
    s.on('close', () => resolve());
    s.on('error', () => undefined);
  });
}

test('SIGTERM after short-lived TLS connection loops and with stalled handshakes: exit within the drain deadline', async () => {
  const file = join(dir, 'gw.yaml');
  await writeFile(file, `
server: { workers: 2, status: { enabled: false }, shutdownTimeoutMs: ${SHUTDOWN_MS}, watchConfig: false }
listeners: [{ name: main, address: 127.0.0.1, port: 0, tls: { certificates: [{ cert: "${pki.server.cert}", key: "${pki.server.key}" }] } }]
upstreams: { a: { targets: [{ url: "${up.url}" }] } }
routes: [{ id: r, match: { pathPrefix: / }, upstream: a }]
accessLog: { enabled: false }
`);
  const p = spawnGateway(['start', '-c', file]);
  const a = await p.waitFor((l) => l.listener === 'main', 60_000);
  await p.waitFor((l) => l.listener === 'main' && l.pid !== a.pid, 60_000);
  const port = a.port!;
  // loops of short TLS connections (h2load --h1 -c 100 -n 100, repeated)
  for (let round = 0; round < 3; round++) await Promise.all(Array.from({ length: 100 }, () => shortTls(port)));
  // stalled handshakes: TCP open, nothing or half a ClientHello sent
  const stalled: net.Socket[] = [];
  for (let i = 0; i < 20; i++) {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    if (i % 2 === 0) s.on('connect', () => s.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc])));
    stalled.push(s);
  }
  // and TLS connections that finished their handshake and never send a request
  const idle = await Promise.all(Array.from({ length: 10 }, () => new Promise<tls.TLSSocket>((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => resolve(s));
    s.on('error', () => undefined);
  })));
  // requests in flight to an upstream that takes a minute, over TLS and over a stalled-read client
  const slow = Array.from({ length: 4 }, () => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => {
      s.write('GET /slow/60000 HTTP/1.1\r\nhost: localhost\r\n\r\n');
    });
    s.on('error', () => undefined);
    return s;
  });
  await new Promise((r) => setTimeout(r, 500));
  const t0 = performance.now();
  p.child.kill('SIGTERM');
  const { code } = await p.exited;
  const took = performance.now() - t0;
  for (const s of [...stalled, ...idle, ...slow]) s.destroy();
  assert.equal(code, 0);
  assert.ok(took < SHUTDOWN_MS + 1500, `SIGTERM took ${Math.round(took)} ms with shutdownTimeoutMs ${SHUTDOWN_MS}`);
  assert.ok(!p.lines.some((l) => l.msg === 'worker did not stop in time; killing it'), 'the primary had to kill a worker');
});
