// Forwarding headers the upstream sees: X-Forwarded-For is the socket peer unless the peer is a trusted
// proxy (then the chain is appended to); X-Forwarded-Proto/Host are always the gateway's own.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, config, get } from '../helpers/gateway.js';
import { startScripted, rawRequest, type Recorded } from '../helpers/servers.js';

const up = await startScripted('up');
const routes = [{ id: 'all', match: { pathPrefix: '/' }, upstream: 'up' }];
const upstreams = { up: { targets: [{ url: up.url }] } };
const untrusted = await startGateway(config({ upstreams, routes }));
const trusted = await startGateway(config({ upstreams, routes, server: { trustedProxies: ['127.0.0.1'] } }));
after(async () => { await untrusted.gw.close(0); await trusted.gw.close(0); await up.close(); });

const last = (): Recorded => up.seen.at(-1)!;
const rawValues = (rec: Recorded, name: string) => {
  const out: string[] = [];
  for (let i = 0; i < rec.rawHeaders.length; i += 2) if (rec.rawHeaders[i]!.toLowerCase() === name) out.push(rec.rawHeaders[i + 1]!);
  return out;
};
const spoof = {
  'x-forwarded-for': '1.2.3.4, 10.0.0.1',
  forwarded: 'for=5.6.7.8;proto=https',
  'x-real-ip': '9.9.9.9',
  'x-forwarded-proto': 'https',
  'x-forwarded-host': 'evil.example',
  'client-ip': '8.8.8.8',
  'true-client-ip': '8.8.4.4',
  'x-client-ip': '7.7.7.7',
  'x-cluster-client-ip': '6.6.6.6',
  'cf-connecting-ip': '5.5.5.5',
  'fastly-client-ip': '4.4.4.4',
};

test('untrusted peer: spoofed X-Forwarded-For / Forwarded are ignored; upstream sees only the peer', async () => {
  const r = await get(`${untrusted.base}/x`, { headers: spoof });
  assert.equal(r.status, 200);
  const rec = last();
  assert.deepEqual(rawValues(rec, 'x-forwarded-for'), ['127.0.0.1']);
  assert.deepEqual(rawValues(rec, 'forwarded'), []);
  for (const h of ['x-real-ip', 'client-ip', 'true-client-ip', 'x-client-ip', 'x-cluster-client-ip', 'cf-connecting-ip', 'fastly-client-ip']) {
    assert.deepEqual(rawValues(rec, h), [], `${h} must not reach the upstream`);
  }
  assert.deepEqual(rawValues(rec, 'x-forwarded-proto'), ['http']);
  assert.deepEqual(rawValues(rec, 'x-forwarded-host'), [`127.0.0.1:${untrusted.port}`]);
});

test('untrusted peer: several X-Forwarded-For lines change nothing', async () => {
  const r = await rawRequest(untrusted.port, 'GET', '/x', [['X-Forwarded-For', '1.1.1.1'], ['X-Forwarded-For', '2.2.2.2'], ['Forwarded', 'for=3.3.3.3']]);
  assert.equal(r.status, 200);
  assert.deepEqual(rawValues(last(), 'x-forwarded-for'), ['127.0.0.1']);
  assert.deepEqual(rawValues(last(), 'x-forwarded-host'), ['gw.test']);
});

test('trusted proxy peer: the X-Forwarded-For chain is kept and the peer appended', async () => {
  const r = await get(`${trusted.base}/x`, { headers: { 'x-forwarded-for': '203.0.113.7', 'x-forwarded-proto': 'https', host: 'api.example.com' } });
  assert.equal(r.status, 200);
  const rec = last();
  assert.deepEqual(rawValues(rec, 'x-forwarded-for'), ['203.0.113.7, 127.0.0.1']);
  assert.deepEqual(rawValues(rec, 'x-forwarded-proto'), ['http'], 'the gateway listener is plain HTTP');
  assert.deepEqual(rawValues(rec, 'x-forwarded-host'), ['api.example.com']);

  const r2 = await rawRequest(trusted.port, 'GET', '/x', [['X-Forwarded-For', '198.51.100.1, 10.0.0.2'], ['X-Forwarded-For', '10.0.0.3']]);
  assert.equal(r2.status, 200);
  assert.deepEqual(rawValues(last(), 'x-forwarded-for'), ['198.51.100.1, 10.0.0.2, 10.0.0.3, 127.0.0.1']);
});

test('trusted proxy peer without X-Forwarded-For: just the peer', async () => {
  await get(`${trusted.base}/x`);
  assert.deepEqual(rawValues(last(), 'x-forwarded-for'), ['127.0.0.1']);
});
