// HTTP/2 clients that leave with streams in flight (a load generator stopping, a browser closing a tab)
// are not the upstream's fault. Found by the TLS bench rows: h2load stopping 500 in-flight streams made
// the gateway abort the upstream exchanges as "invalid upstream response head" (a target failure), and
// passive health ejected the only target for 30 s: every later request got 503.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { makePki, type Pki } from '../helpers/certs.js';
import { startTlsGateway, httpsGet, type TlsGateway } from './helpers.js';

let pki: Pki;
let g: TlsGateway;
before(async () => {
  pki = makePki();
  g = await startTlsGateway({ certificates: [{ cert: pki.server.cert, key: pki.server.key }] });
});
after(() => g.close());

/** One session with `streams` requests in flight, destroyed as soon as the first answer arrives. */
function abandon(streams: number): Promise<void> {
  return new Promise((resolve) => {
    const s = http2.connect(`https://localhost:${g.port}`, { ca: pki.ca.certPem });
    s.on('error', () => undefined);
    s.on('close', () => resolve());
    for (let i = 0; i < streams; i++) {
      const req = s.request({ ':path': `/echo?i=${i}` });
      req.on('error', () => undefined);
      req.on('response', () => s.destroy());
      req.resume();
    }
  });
}

test('sessions destroyed with streams in flight do not eject the upstream target', async () => {
  for (let round = 0; round < 20; round++) await Promise.all(Array.from({ length: 10 }, () => abandon(20)));
  await new Promise((r) => setTimeout(r, 100));
  const r = await httpsGet(g.port, '/echo', pki.ca.certPem);
  assert.equal(r.status, 200, `after abandoned streams: ${r.status} ${r.body.slice(0, 200)}`);
});
