// Load balancing through the gateway: weighted round-robin, consistent hashing by header and cookie,
// least-requests around a busy target.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type http from 'node:http';
import { startGateway, config, get } from '../helpers/gateway.js';
import { startScripted, echo, type ScriptHandler, type ScriptedUpstream } from '../helpers/servers.js';
import { waitFor, within } from '../helpers/wait.js';

const w3 = await startScripted('w3');
const w1 = await startScripted('w1');
const h1 = await startScripted('h1');
const h2 = await startScripted('h2');
const h3 = await startScripted('h3');

// least-requests: /hold is parked until release() is called.
const held: http.ServerResponse[] = [];
const holding = (name: string): ScriptHandler => {
  const ok = echo(name);
  return (req, res, rec) => { if (req.url === '/hold') held.push(res); else ok(req, res, rec); };
};
const l1 = await startScripted('l1');
const l2 = await startScripted('l2');
l1.handler = holding('l1');
l2.handler = holding('l2');

const hashTargets = [{ url: h1.url }, { url: h2.url }, { url: h3.url }];
const { gw, base } = await startGateway(config({
  upstreams: {
    weighted: { targets: [{ url: w3.url, weight: 3 }, { url: w1.url, weight: 1 }] },
    byHeader: { targets: hashTargets, balancer: 'consistent-hash', hashOn: { header: 'X-Tenant' } },
    byCookie: { targets: hashTargets, balancer: 'consistent-hash', hashOn: { cookie: 'sid' } },
    least: { targets: [{ url: l1.url }, { url: l2.url }], balancer: 'least-requests' },
  },
  routes: [
    { id: 'weighted', match: { pathPrefix: '/weighted' }, upstream: 'weighted' },
    { id: 'header', match: { pathPrefix: '/header' }, upstream: 'byHeader' },
    { id: 'cookie', match: { pathPrefix: '/cookie' }, upstream: 'byCookie' },
    { id: 'least', match: { pathPrefix: '/' }, upstream: 'least' },
  ],
}));
after(async () => {
  for (const r of held) r.destroy();
  await gw.close(0);
  await Promise.all([w3, w1, h1, h2, h3, l1, l2].map((u) => u.close()));
});

const upstreamOf = async (path: string, headers?: Record<string, string>) => {
  const r = await get(`${base}${path}`, headers ? { headers } : {});
  assert.equal(r.status, 200);
  return r.json().upstream as string;
};

test('weighted round-robin 3:1 over 40 requests gives 30/10', async () => {
  const counts: Record<string, number> = {};
  for (let i = 0; i < 40; i++) {
    const u = await upstreamOf('/weighted/x');
    counts[u] = (counts[u] ?? 0) + 1;
  }
  assert.deepEqual(counts, { w3: 30, w1: 10 });
});

test('consistent hash by header: one key always lands on the same target; keys spread', async () => {
  const placement = new Map<string, string>();
  for (let k = 0; k < 24; k++) placement.set(`tenant-${k}`, await upstreamOf('/header/x', { 'x-tenant': `tenant-${k}` }));
  for (let round = 0; round < 3; round++) {
    for (const [key, where] of placement) assert.equal(await upstreamOf('/header/y', { 'x-tenant': key }), where, key);
  }
  assert.ok(new Set(placement.values()).size >= 2, 'different keys use different targets');
});

test('consistent hash by cookie: the sid cookie picks the target, other cookies do not matter', async () => {
  const placement = new Map<string, string>();
  for (let k = 0; k < 24; k++) placement.set(`s${k}`, await upstreamOf('/cookie/x', { cookie: `sid=s${k}` }));
  for (const [sid, where] of placement) {
    assert.equal(await upstreamOf('/cookie/y', { cookie: `theme=dark; sid=${sid}; lang=en` }), where, sid);
    assert.equal(await upstreamOf('/cookie/z', { cookie: `sid=${sid}` }), where, sid);
  }
  assert.ok(new Set(placement.values()).size >= 2);
});

test('least-requests: while one target is busy, new requests go to the idle one', async () => {
  const slow = get(`${base}/hold`);
  await waitFor(() => held.length === 1, { what: 'the held request to arrive' });
  const busy: ScriptedUpstream = l1.seen.some((r) => r.url === '/hold') ? l1 : l2;
  const idle = busy === l1 ? l2 : l1;
  const before = idle.arrived;
  for (let i = 0; i < 8; i++) assert.equal(await upstreamOf('/fast'), idle.name);
  assert.equal(idle.arrived - before, 8);
  assert.equal(busy.seen.filter((r) => r.url === '/fast').length, 0, 'the busy target got none of the fast requests');

  held[0]!.writeHead(200).end('{}');
  assert.equal((await within(slow, 3000, 'held request')).status, 200);
  // Both idle again: traffic spreads over both.
  const names = new Set<string>();
  for (let i = 0; i < 4; i++) names.add(await upstreamOf('/fast'));
  assert.equal(names.size, 2);
});
