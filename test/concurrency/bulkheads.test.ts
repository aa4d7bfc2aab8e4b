// Bulkheads through a real gateway: a scripted upstream holds requests open so the test decides when
// each one finishes. Limits, queueing, queue-full and queue-timeout refusals, per-consumer isolation,
// the shared upstream bulkhead, and no slot leak on client abort, upstream error or reload.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { request as undiciRequest } from 'undici';
import { startGateway, config, get, client, type SimpleResponse } from '../helpers/gateway.js';
import { startScripted, closedPort } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';
import { bulkheadStats } from '../../src/stages/concurrency/bulkhead.js';
import type { SecurityEvent } from '../../src/observability/security-events.js';
import type { GatewayConfig } from '../../src/config/schema.js';

const SECRET = randomBytes(32).toString('base64url');
const ISSUER = 'https://idp.test';

// The upstream parks every request until the test lets it go.
const parked: ServerResponse[] = [];
const up = await startScripted('slow', (_req, res) => { parked.push(res); });
const releaseOne = (): void => { parked.shift()?.end('done'); };
const releaseAll = (): void => { while (parked.length > 0) releaseOne(); };
const dead = await closedPort();

const cfg: GatewayConfig = config({
  identity: { issuers: { idp: { issuer: ISSUER, audiences: ['api'], algorithms: ['HS256'], keys: [{ secret: SECRET }] } } },
  upstreams: {
    slow: { targets: [{ url: up.url }] },
    shared: { targets: [{ url: up.url }] },
    dead: { targets: [{ url: `http://127.0.0.1:${dead}` }] },
  },
  overload: { upstreams: { shared: { maxInFlight: 1 } } },
  routes: [
    { id: 'queued', match: { pathPrefix: '/queued' }, upstream: 'slow', concurrency: { maxInFlight: 2, queue: { maxQueue: 1, maxWaitMs: 5000 } } },
    { id: 'brief', match: { pathPrefix: '/brief' }, upstream: 'slow', concurrency: { maxInFlight: 1, queue: { maxQueue: 5, maxWaitMs: 100 } } },
    { id: 'strict', match: { pathPrefix: '/strict' }, upstream: 'slow', concurrency: { maxInFlight: 1 } },
    { id: 'cached', match: { pathPrefix: '/cached' }, upstream: 'slow', concurrency: { maxInFlight: 1 }, cache: { public: true, ttlSeconds: 60 } },
    { id: 'failing', match: { pathPrefix: '/failing' }, upstream: 'dead', concurrency: { maxInFlight: 1 } },
    {
      id: 'per-consumer', match: { pathPrefix: '/mine' }, upstream: 'slow',
      authentication: { methods: [{ jwt: { issuers: ['idp'], dpop: 'off' } }], anonymous: true },
      concurrency: { perConsumer: { maxInFlight: 1 }, maxInFlight: 10 },
    },
    { id: 'shared-a', match: { pathPrefix: '/shared-a' }, upstream: 'shared', concurrency: { maxInFlight: 5 } },
    { id: 'shared-b', match: { pathPrefix: '/shared-b' }, upstream: 'shared' },
  ],
});

const { gw, base } = await startGateway(cfg);
const events: SecurityEvent[] = [];
const unsubscribe = gw.events.subscribe((e) => { if (e.type === 'overload') events.push(e); });
after(async () => { unsubscribe(); releaseAll(); await gw.close(0); await up.close(); });

const stat = (name: string) => bulkheadStats().find((s) => s.name === name) ?? { inFlight: 0, queued: 0, keys: 0 };
const arrived = (n: number) => waitFor(() => up.arrived >= n, { what: `${n} requests at the upstream` });
/** After a test: nothing in flight or queued anywhere (no slot leaked). */
async function drained(): Promise<void> {
  releaseAll();
  await waitFor(() => bulkheadStats().every((s) => s.inFlight === 0 && s.queued === 0), { what: 'all bulkheads empty' });
}

function assertLimited(r: SimpleResponse, reason: string): void {
  assert.equal(r.status, 503);
  assert.equal(r.headers['retry-after'], '1');
  assert.equal(r.headers['content-type'], 'application/problem+json');
  assert.match(r.json<{ type: string }>().type, /\/concurrency-limit$/);
  assert.ok(events.some((e) => e.reason === reason), `security event ${reason} in ${JSON.stringify(events.map((e) => e.reason))}`);
}

async function bearer(sub: string): Promise<Record<string, string>> {
  const t = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setIssuer(ISSUER).setAudience('api').setSubject(sub)
    .setIssuedAt().setExpirationTime('5m').sign(Buffer.from(SECRET, 'base64url'));
  return { authorization: `Bearer ${t}` };
}

describe('concurrency limits (bulkheads)', () => {
  it('N in flight, the next one queued and served when a slot frees, queue full → 503 with Retry-After', async () => {
    events.length = 0;
    const start = up.arrived;
    const first = [get(`${base}/queued/1`), get(`${base}/queued/2`)];
    await arrived(start + 2);
    const third = get(`${base}/queued/3`);
    await waitFor(() => stat('route:queued').queued === 1, { what: 'third request queued' });
    assert.equal(up.arrived, start + 2, 'the queued request has not reached the upstream');

    assertLimited(await get(`${base}/queued/4`), 'route-queue-full');
    assert.equal(events[0]!.route, 'queued');

    releaseOne();
    await arrived(start + 3);
    assert.deepEqual(stat('route:queued'), { name: 'route:queued', inFlight: 2, queued: 0, keys: 0 });
    releaseAll();
    await arrived(start + 3);
    releaseAll();
    for (const r of await Promise.all([...first, third])) assert.equal(r.status, 200);
    await drained();
  });

  it('a request that waits longer than maxWaitMs gets 503', async () => {
    events.length = 0;
    const start = up.arrived;
    const holder = get(`${base}/brief/1`);
    await arrived(start + 1);
    assertLimited(await get(`${base}/brief/2`), 'route-queue-timeout');
    assert.equal(stat('route:brief').queued, 0);
    releaseAll();
    assert.equal((await holder).status, 200);
    await drained();
  });

  it('without a queue the request over the limit is refused at once', async () => {
    events.length = 0;
    const start = up.arrived;
    const holder = get(`${base}/strict/1`);
    await arrived(start + 1);
    assertLimited(await get(`${base}/strict/2`), 'route-full');
    releaseAll();
    assert.equal((await holder).status, 200);
    // The slot is free again.
    const next = get(`${base}/strict/3`);
    await arrived(start + 2);
    releaseAll();
    assert.equal((await next).status, 200);
    await drained();
  });

  it('a cache hit needs no slot: served while the route\'s only slot is taken by a miss', async () => {
    events.length = 0;
    const start = up.arrived;
    const first = get(`${base}/cached/x`);
    await arrived(start + 1);
    releaseAll();
    assert.equal((await first).status, 200);
    const holder = get(`${base}/cached/y`); // a miss: holds the only slot
    await arrived(start + 2);
    const hit = await get(`${base}/cached/x`);
    assert.equal(hit.status, 200);
    assert.match(String(hit.headers['cache-status']), /hit/);
    assertLimited(await get(`${base}/cached/z`), 'route-full'); // another miss still waits its turn
    releaseAll();
    assert.equal((await holder).status, 200);
    await drained();
  });

  it('releases the slot when the client goes away, in flight or while queued', async () => {
    const start = up.arrived;
    const inFlight = new AbortController();
    const p1 = undiciRequest(`${base}/brief/a`, { dispatcher: client, signal: inFlight.signal }).catch(() => undefined);
    await arrived(start + 1);
    assert.equal(stat('route:brief').inFlight, 1);
    inFlight.abort();
    await p1;
    await waitFor(() => stat('route:brief').inFlight === 0, { what: 'slot released after abort' });
    releaseAll();

    const held = [get(`${base}/queued/1`), get(`${base}/queued/2`)];
    await arrived(start + 3);
    const queued = new AbortController();
    const p2 = undiciRequest(`${base}/queued/3`, { dispatcher: client, signal: queued.signal }).catch(() => undefined);
    await waitFor(() => stat('route:queued').queued === 1, { what: 'third request queued' });
    queued.abort();
    await p2;
    await waitFor(() => stat('route:queued').queued === 0, { what: 'aborted request left the queue' });
    releaseAll();
    for (const r of await Promise.all(held)) assert.equal(r.status, 200);
    await drained();
    assert.equal(up.arrived, start + 3, 'the request aborted while queued never reached the upstream');
  });

  it('releases the slot when the upstream fails', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await get(`${base}/failing/${i}`);
      // 502 connection refused, then 503 upstream-unavailable once the target is ejected; never concurrency-limit.
      assert.match(r.json<{ type: string }>().type, /\/upstream-[a-z-]+$/, 'a leaked slot would turn this into concurrency-limit');
    }
    assert.equal(stat('route:failing').inFlight, 0);
  });

  it('one consumer at its limit does not block another; anonymous clients are keyed by IP, not by X-Forwarded-For', async () => {
    events.length = 0;
    const start = up.arrived;
    const alice = await bearer('alice');
    const a1 = get(`${base}/mine/1`, { headers: alice });
    await arrived(start + 1);
    assertLimited(await get(`${base}/mine/2`, { headers: alice }), 'consumer-full');

    const b1 = get(`${base}/mine/3`, { headers: await bearer('bob') });
    await arrived(start + 2);

    const anon = get(`${base}/mine/4`);
    await arrived(start + 3);
    // An untrusted peer's X-Forwarded-For is not believed: same client IP, same (full) slot.
    assertLimited(await get(`${base}/mine/5`, { headers: { 'x-forwarded-for': '198.51.100.7' } }), 'consumer-full');
    assert.equal(stat('route:per-consumer:consumer').keys, 3);
    releaseAll();
    for (const r of await Promise.all([a1, b1, anon])) assert.equal(r.status, 200);
    await drained();
    assert.equal(stat('route:per-consumer:consumer').keys, 0, 'idle consumers are forgotten');
  });

  it('an upstream bulkhead is shared by every route to that upstream', async () => {
    events.length = 0;
    const start = up.arrived;
    const a = get(`${base}/shared-a/1`);
    await arrived(start + 1);
    assertLimited(await get(`${base}/shared-b/1`), 'upstream-full');
    assertLimited(await get(`${base}/shared-a/2`), 'upstream-full');
    assert.equal(stat('route:shared-a').inFlight, 1, 'the refused request gave its route slot back');
    releaseAll();
    assert.equal((await a).status, 200);
    await drained();
  });

  it('a reload with the same limits keeps the count: requests of both generations share the slots', async () => {
    const start = up.arrived;
    const held = get(`${base}/strict/old`);
    await arrived(start + 1);
    await gw.reload(cfg);
    assert.equal((await get(`${base}/strict/new`)).status, 503);
    releaseAll();
    assert.equal((await held).status, 200);
    const next = get(`${base}/strict/after`);
    await arrived(start + 2);
    releaseAll();
    assert.equal((await next).status, 200);
    await drained();
  });
});
