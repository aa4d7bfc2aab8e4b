// The status listener: liveness always, readiness only while every actively checked upstream has a
// healthy target; loopback by default.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { Gateway } from '../../src/gateway/gateway.js';
import { silentLogger } from '../../src/observability/logger.js';
import { startScripted, echo, statusHandler } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

async function status(port: number, path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await request(`http://127.0.0.1:${port}${path}`);
  return { status: r.statusCode, body: (await r.body.json()) as Record<string, unknown> };
}

test('/healthz is 200; /readyz follows active health checks; non-GET is refused', async () => {
  const up = await startScripted('a', echo('a'));
  const gw = await Gateway.start({
    server: { status: { port: 0 } },
    listeners: [{ name: 'main', address: '127.0.0.1', port: 0 }],
    upstreams: { a: { targets: [{ url: up.url }], healthCheck: { active: { path: '/health', intervalMs: 30, healthyThreshold: 1, unhealthyThreshold: 1 } } } },
    routes: [{ id: 'r', match: { pathPrefix: '/' }, upstream: 'a' }],
  }, { logger: silentLogger, accessLog: false });
  try {
    const st = gw.statusAddress()!;
    assert.equal(st.address, '127.0.0.1', 'the status listener binds loopback by default');
    assert.deepEqual((await status(st.port, '/healthz')).status, 200);
    assert.equal((await status(st.port, '/readyz')).status, 200);

    up.handler = statusHandler(500);
    const notReady = await waitFor(async () => { const s = await status(st.port, '/readyz'); return s.status === 503 ? s : undefined; }, { what: 'readiness to follow the health check' });
    assert.deepEqual(notReady.body.unhealthy_upstreams, ['a']);
    assert.equal((await status(st.port, '/healthz')).status, 200, 'liveness does not depend on upstreams');

    up.handler = echo('a');
    await waitFor(async () => ((await status(st.port, '/readyz')).status === 200 ? true : undefined), { what: 'readiness to follow the health check' });

    const post = await request(`http://127.0.0.1:${st.port}/healthz`, { method: 'POST' });
    assert.equal(post.statusCode, 405);
    await post.body.text();
    assert.equal((await status(st.port, '/nope')).status, 404);
  } finally {
    await gw.close(0);
    await up.close();
  }
});

test('a PORTCULLIS_ADMIN_TOKEN shorter than 32 characters is ignored with a warning, not silently', async () => {
  const { memoryLogger } = await import('../tls/helpers.js');
  const log = memoryLogger();
  const saved = process.env.PORTCULLIS_ADMIN_TOKEN;
  process.env.PORTCULLIS_ADMIN_TOKEN = 'too-short';
  const gw = await Gateway.start({
    server: { status: { port: 0 } },
    listeners: [{ name: 'main', address: '127.0.0.1', port: 0 }],
    routes: [{ id: 'r', match: { pathPrefix: '/' }, respond: { status: 200 } }],
  }, { logger: log.logger, accessLog: false });
  try {
    const warn = log.lines.find((l) => l.variable === 'PORTCULLIS_ADMIN_TOKEN');
    assert.ok(warn, 'a warning names the variable');
    assert.equal(warn.level, 40);
    assert.equal(warn.length, 9);
    assert.ok(!JSON.stringify(log.lines).includes('too-short'), 'the value itself is never logged');
  } finally {
    if (saved === undefined) delete process.env.PORTCULLIS_ADMIN_TOKEN; else process.env.PORTCULLIS_ADMIN_TOKEN = saved;
    await gw.close(0);
  }
});
