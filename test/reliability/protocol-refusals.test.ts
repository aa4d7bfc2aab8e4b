// Refusals before a request exists (llhttp's 400/431, connections over the per-IP cap) leave a trace:
// a counter `portcullis_protocol_refusals_total{reason}` and a rate-limited warn line.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { register, type Counter } from 'prom-client';
import { startGateway, config, raw, statusOf } from '../helpers/gateway.js';
import { memoryLogger } from '../tls/helpers.js';
import { refusalRecorder, REFUSAL_LOG_BURST, REFUSAL_LOG_WINDOW_MS } from '../../src/server/listener.js';
import { waitFor } from '../helpers/wait.js';

const mem = memoryLogger();
const { gw, port } = await startGateway({
  ...config({ routes: [{ id: 'r', match: { pathPrefix: '/' }, respond: { status: 200 } }] }),
  listeners: [{ name: 'main', address: '127.0.0.1', port: 0, limits: { maxConnectionsPerIp: 2, maxHeaderBytes: 4096 } }],
}, { logger: mem.logger });
after(async () => { await gw.close(0); });

async function count(reason: string): Promise<number> {
  const m = register.getSingleMetric('portcullis_protocol_refusals_total') as Counter | undefined;
  if (m === undefined) return 0;
  return (await m.get()).values.filter((v) => v.labels.reason === reason && v.labels.listener === 'main').reduce((a, v) => a + v.value, 0);
}

test('parser refusals (400, 431) are counted and logged', async () => {
  const bad0 = await count('bad-request');
  const big0 = await count('headers-too-large');
  assert.equal(statusOf(await raw(port, 'GET / HTTP/1.1\r\nHost: x\r\nbad header\r\n\r\n')), 400);
  assert.equal(statusOf(await raw(port, `GET / HTTP/1.1\r\nHost: x\r\nx-big: ${'a'.repeat(8000)}\r\n\r\n`)), 431);
  assert.equal(await count('bad-request'), bad0 + 1);
  assert.equal(await count('headers-too-large'), big0 + 1);
  const line = mem.lines.find((l) => l.event === 'protocol-refusal' && l.reason === 'headers-too-large');
  assert.ok(line, 'a warn line for the 431');
  assert.equal(line.status, 431);
  assert.equal(line.client_ip, '127.0.0.1');
  assert.equal(typeof line.request_id, 'string');
});

test('connections over the per-IP cap are counted and logged', async () => {
  const before = await count('per-ip-cap');
  const open: net.Socket[] = [];
  for (let i = 0; i < 3; i++) {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    await new Promise((r) => s.once('connect', r));
    open.push(s);
  }
  await waitFor(async () => (await count('per-ip-cap')) === before + 1, { what: 'the third connection refused' });
  for (const s of open) s.destroy();
  assert.ok(mem.lines.some((l) => l.event === 'protocol-refusal' && l.reason === 'per-ip-cap'));
});

test('refusal log lines are rate-limited per reason, with the suppressed count carried', () => {
  const m = memoryLogger();
  let t = 1_000_000;
  const rec = refusalRecorder('l', m.logger, () => t);
  for (let i = 0; i < REFUSAL_LOG_BURST + 30; i++) rec('bad-request', '192.0.2.1', 400, `id${i}`);
  rec('per-ip-cap', '192.0.2.1');
  assert.equal(m.lines.filter((l) => l.reason === 'bad-request').length, REFUSAL_LOG_BURST);
  assert.equal(m.lines.filter((l) => l.reason === 'per-ip-cap').length, 1);
  t += REFUSAL_LOG_WINDOW_MS;
  rec('bad-request', '192.0.2.1', 400, 'next');
  const last = m.lines.at(-1)!;
  assert.equal(last.request_id, 'next');
  assert.equal(last.suppressed, 30);
});
