// A client that goes away: the upstream exchange is cancelled, and the target is not blamed for it
// (no passive ejection, no breaker trip).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startGateway, config, get } from '../helpers/gateway.js';
import { startScripted, captureLogger } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

let upstreamClosed = 0;
const up = await startScripted('slow', (req, res) => {
  if (req.url === '/fast') { res.writeHead(200); res.end('ok'); return; }
  res.on('close', () => { upstreamClosed++; });
  // never answers: only the client going away ends it
});
const log = captureLogger();
const { gw, port, base } = await startGateway(config({
  upstreams: {
    slow: {
      targets: [{ url: up.url }],
      healthCheck: { passive: { consecutiveFailures: 2, cooldownMs: 60_000 } },
      circuitBreaker: { failureRatio: 0.5, minRequests: 2, openMs: 60_000 },
    },
  },
  routes: [{ id: 'slow', match: { pathPrefix: '/' }, upstream: 'slow' }],
}), { logger: log.logger });
after(async () => { await gw.close(0); await up.close(); });

function abandon(path: string): Promise<void> {
  return new Promise((resolve) => {
    const req = http.request({ port, host: '127.0.0.1', path, agent: false });
    req.on('error', () => resolve());
    req.end();
    const before = up.arrived;
    void waitFor(() => up.arrived > before, { what: 'request at the upstream (target ejected?)', timeoutMs: 2000 })
      .then(() => { req.destroy(); resolve(); }, () => { req.destroy(); resolve(); });
  });
}

test('client disconnects cancel the upstream request and do not eject the target or open the breaker', async () => {
  for (let i = 0; i < 4; i++) {
    const before = up.arrived;
    await abandon('/hang');
    assert.equal(up.arrived, before + 1, `request ${i} reached the upstream (the target was not ejected)`);
    await waitFor(() => upstreamClosed === i + 1, { what: `upstream request ${i} to be cancelled` });
  }
  const r = await get(`${base}/fast`);
  assert.equal(r.status, 200, `target still in service: ${r.body}`);
  assert.equal(log.events('target-ejected').length, 0);
  assert.equal(log.events('breaker-opened').length, 0);
});
