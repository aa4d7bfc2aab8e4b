// OAuth 2.0 introspection (RFC 7662) against a scripted endpoint: active/inactive/expired answers, iss
// and aud checks, fail-closed on timeout and server errors, the positive cache bounded by exp, the
// negative cache, one call for concurrent requests, and both client authentication methods as the
// endpoint receives them.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { testCompileEnv } from '../helpers/compile-env.js';
import { fakeContext } from '../helpers/fake-context.js';
import { waitFor } from '../helpers/wait.js';
import { compileIntrospectionMethod } from '../../src/stages/authentication/introspection.js';
import { introspector, MAX_INTROSPECTION_CALLS } from '../../src/identity/introspection/client.js';
import type { IntrospectionConfig } from '../../src/identity/schema.js';
import type { AuthMethod, AuthOutcome } from '../../src/stages/authentication/types.js';

interface Seen { authorization: string | undefined; contentType: string | undefined; form: URLSearchParams }
type Answer = (form: URLSearchParams, res: http.ServerResponse) => void;

/** An introspection endpoint that records each call and answers with `answer` (replaceable). */
async function endpoint(answer: Answer): Promise<{ url: string; seen: Seen[]; answer: Answer; close(): Promise<void> }> {
  const ep = { seen: [] as Seen[], answer } as { url: string; seen: Seen[]; answer: Answer; close(): Promise<void> };
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => { body += c; });
    req.on('end', () => {
      const form = new URLSearchParams(body);
      ep.seen.push({ authorization: req.headers.authorization, contentType: req.headers['content-type'], form });
      ep.answer(form, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  ep.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/introspect`;
  ep.close = () => new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); });
  return ep;
}

const json = (status: number, body: unknown): Answer => (_f, res) => { res.writeHead(status, { 'content-type': 'application/json' }); res.end(JSON.stringify(body)); };
const nowSec = (): number => Math.floor(Date.now() / 1000);
const ACTIVE = { active: true, sub: 'alice', client_id: 'billing', scope: 'orders:read orders:write', iss: 'https://as.example', aud: ['orders'], exp: nowSec() + 600, roles: ['clerk'] };

const closers: (() => Promise<void>)[] = [];
after(async () => { await Promise.all(closers.map((c) => c())); });

async function setup(answer: Answer, over: Partial<IntrospectionConfig> = {}, clock?: () => number, cacheEntries?: number) {
  const ep = await endpoint(answer);
  closers.push(ep.close);
  const cfg: IntrospectionConfig = { endpoint: ep.url, clientId: 'gateway', clientSecret: 'gw-secret', timeoutMs: 3000, ...over };
  const env = testCompileEnv({ identity: { introspection: { as: cfg }, consumers: [{ id: 'billing', roles: ['service'], metadata: { plan: 'gold' } }], ...(cacheEntries !== undefined ? { verificationCache: { maxEntries: cacheEntries } } : {}) } });
  const m = compileIntrospectionMethod({ server: 'as' }, env.identity, clock !== undefined ? { now: clock } : {});
  await env.identity.services.ready();
  closers.push(() => env.identity.services.abandon());
  return { ep, m, env };
}

function call(m: AuthMethod, token: string, url = '/orders'): AuthOutcome | Promise<AuthOutcome> {
  const r = m.authenticate(fakeContext({ url, headers: { authorization: `Bearer ${token}` } }));
  assert.ok(r !== undefined);
  return r;
}
const reasonOf = (o: AuthOutcome): string => (o.ok ? 'ok' : o.reason);

test('active token: identity from the answer (subject, scopes, consumer by client_id, roles merged), then served from the cache synchronously', async () => {
  const { ep, m } = await setup(json(200, ACTIVE), { issuer: 'https://as.example', audiences: ['orders'], rolesClaim: 'roles' });
  const first = await call(m, 'opaque-token-1');
  assert.ok(first.ok, reasonOf(first));
  assert.equal(first.identity.kind, 'introspection');
  assert.equal(first.identity.id, 'billing');
  assert.equal(first.identity.consumer, 'billing');
  assert.equal(first.identity.subject, 'alice');
  assert.deepEqual(first.identity.scopes, ['orders:read', 'orders:write']);
  assert.deepEqual(first.identity.roles, ['clerk', 'service']);
  assert.deepEqual(first.identity.metadata, { plan: 'gold' });
  assert.equal(ep.seen.length, 1);
  assert.equal(ep.seen[0]!.form.get('token'), 'opaque-token-1');
  assert.equal(ep.seen[0]!.form.get('token_type_hint'), 'access_token');
  assert.equal(ep.seen[0]!.contentType, 'application/x-www-form-urlencoded');
  const second = call(m, 'opaque-token-1');
  assert.ok(!(second instanceof Promise), 'cache hit is synchronous');
  assert.equal(second, first);
  assert.equal(ep.seen.length, 1);
});

test('inactive token → 401 token-inactive; the negative cache makes repeated bad tokens cost one call per window', async () => {
  let clock = Date.now();
  const { ep, m } = await setup(json(200, { active: false }), { negativeCacheSec: 10 }, () => clock);
  for (let i = 0; i < 5; i++) assert.equal(reasonOf(await call(m, 'revoked')), 'token-inactive');
  assert.equal(ep.seen.length, 1);
  clock += 10_001;
  assert.equal(reasonOf(await call(m, 'revoked')), 'token-inactive');
  assert.equal(ep.seen.length, 2, 'asked again once the negative entry expired');
});

test('expired, not-yet-valid, wrong issuer, wrong audience, DPoP-bound answers are refused', async () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ ...ACTIVE, exp: nowSec() - 1 }, 'token-expired'],
    [{ ...ACTIVE, nbf: nowSec() + 60 }, 'token-not-yet-valid'],
    [{ ...ACTIVE, iss: 'https://evil.example' }, 'token-issuer-mismatch'],
    [{ ...ACTIVE, aud: 'payments' }, 'token-audience-mismatch'],
    [{ ...ACTIVE, aud: undefined }, 'token-audience-mismatch'],
    [{ ...ACTIVE, token_type: 'refresh_token' }, 'token-not-access-token'],
    [{ ...ACTIVE, cnf: { jkt: 'abc' } }, 'dpop-token-as-bearer'],
    [{ active: 'true' }, 'token-inactive'],
  ];
  for (const [body, reason] of cases) {
    const { m } = await setup(json(200, body), { issuer: 'https://as.example', audiences: ['orders'] });
    const o = await call(m, 't');
    assert.equal(reasonOf(o), reason, JSON.stringify(body));
    assert.equal(!o.ok && o.status, 401);
  }
});

test('timeout → 503 introspection-unavailable (fail closed), not cached', async () => {
  const { ep, m } = await setup(() => { /* never answers */ }, { timeoutMs: 200 });
  const t0 = performance.now();
  const o = await call(m, 'slow-token');
  const took = performance.now() - t0;
  assert.equal(reasonOf(o), 'introspection-unavailable');
  assert.equal(!o.ok && o.status, 503);
  assert.ok(took >= 150 && took < 1500, `answered after ${Math.round(took)} ms`);
  ep.answer = json(200, ACTIVE);
  assert.equal(reasonOf(await call(m, 'slow-token')), 'ok', 'the failure was not cached');
});

test('400 from the endpoint (it will not introspect this token) → 401 token-rejected, negatively cached', async () => {
  const { ep, m } = await setup(json(400, { error: 'invalid_request' }));
  assert.equal(reasonOf(await call(m, 'a.b.c')), 'token-rejected');
  assert.equal(reasonOf(await call(m, 'a.b.c')), 'token-rejected');
  assert.equal(ep.seen.length, 1);
});

test('server errors, invalid JSON, refused client credentials and an unreachable server → 503', async () => {
  const answers: Answer[] = [
    json(500, { error: 'boom' }),
    (_f, res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{not json'); },
    json(401, { error: 'invalid_client' }),
    (_f, res) => { res.socket?.destroy(); },
    json(200, [1, 2]),
  ];
  for (const a of answers) {
    const { m } = await setup(a);
    assert.equal(reasonOf(await call(m, 't')), 'introspection-unavailable');
  }
  const { ep, m } = await setup(json(200, ACTIVE));
  await ep.close();
  assert.equal(reasonOf(await call(m, 't')), 'introspection-unavailable');
});

test('active answers are cached until min(exp, cacheMaxSec), then asked again', async () => {
  let clock = Date.now();
  const exp = Math.floor(clock / 1000) + 5;
  const { ep, m } = await setup(json(200, { ...ACTIVE, exp }), { cacheMaxSec: 300 }, () => clock);
  assert.equal(reasonOf(await call(m, 'short-lived')), 'ok');
  clock = exp * 1000 - 10;
  assert.equal(reasonOf(await call(m, 'short-lived')), 'ok');
  assert.equal(ep.seen.length, 1);
  clock = exp * 1000 + 1;
  ep.answer = json(200, { active: false });
  assert.equal(reasonOf(await call(m, 'short-lived')), 'token-inactive');
  assert.equal(ep.seen.length, 2);

  const capped = await setup(json(200, { ...ACTIVE, exp: Math.floor(Date.now() / 1000) + 3600 }), { cacheMaxSec: 2 }, () => clock);
  assert.equal(reasonOf(await call(capped.m, 'x')), 'ok');
  clock += 2001;
  assert.equal(reasonOf(await call(capped.m, 'x')), 'ok');
  assert.equal(capped.ep.seen.length, 2);
});

test('concurrent requests with the same token share one introspection call', async () => {
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => { release = r; });
  const { ep, m } = await setup((_f, res) => { void gate.then(() => json(200, ACTIVE)(_f, res)); });
  const pending = Array.from({ length: 10 }, () => call(m, 'same-token'));
  release();
  const results = await Promise.all(pending);
  assert.ok(results.every((o) => o.ok));
  assert.equal(ep.seen.length, 1);
});

test('client_secret_basic: id and secret form-urlencoded then base64 (RFC 6749 2.3.1)', async () => {
  const clientId = 'gw client:1';
  const clientSecret = 'p@ss w/rd+%&=';
  const { ep, m } = await setup(json(200, ACTIVE), { clientId, clientSecret, clientAuth: 'client_secret_basic' });
  assert.equal(reasonOf(await call(m, 'tok')), 'ok');
  const auth = ep.seen[0]!.authorization!;
  assert.match(auth, /^Basic /);
  const decoded = Buffer.from(auth.slice(6), 'base64').toString('utf8');
  const sep = decoded.indexOf(':');
  const dec = (s: string): string => decodeURIComponent(s.replace(/\+/g, ' '));
  assert.equal(dec(decoded.slice(0, sep)), clientId);
  assert.equal(dec(decoded.slice(sep + 1)), clientSecret);
  assert.equal(decoded.slice(0, sep), 'gw+client%3A1', 'the colon in the id is encoded, so the split is unambiguous');
  assert.equal(ep.seen[0]!.form.get('client_secret'), null);
});

test('client_secret_post: credentials in the form body, no Authorization header', async () => {
  const { ep, m } = await setup(json(200, ACTIVE), { clientId: 'gw', clientSecret: 's3cr&t', clientAuth: 'client_secret_post' });
  assert.equal(reasonOf(await call(m, 'tok')), 'ok');
  assert.equal(ep.seen[0]!.authorization, undefined);
  assert.equal(ep.seen[0]!.form.get('client_id'), 'gw');
  assert.equal(ep.seen[0]!.form.get('client_secret'), 's3cr&t');
  assert.equal(ep.seen[0]!.form.get('token'), 'tok');
});

test('no Bearer token → not this method; token in the query string, oversized token and malformed header are refused without a call', async () => {
  const { ep, m, env } = await setup(json(200, ACTIVE), { maxTokenBytes: 64 });
  assert.equal(m.authenticate(fakeContext({ url: '/orders' })), undefined);
  assert.equal(m.authenticate(fakeContext({ url: '/orders', headers: { authorization: 'Basic abc' } })), undefined);
  const q = m.authenticate(fakeContext({ url: '/orders?access_token=abc' })) as AuthOutcome;
  assert.equal(reasonOf(q), 'token-in-query-not-allowed');
  assert.equal(!q.ok && q.error, 'invalid_request');
  assert.equal(reasonOf(await call(m, 'x'.repeat(65))), 'token-too-large');
  assert.equal(reasonOf(m.authenticate(fakeContext({ headers: { authorization: 'Bearer a b' } })) as AuthOutcome), 'malformed-authorization');
  assert.equal(ep.seen.length, 0);
  assert.equal(introspector('as', env.identity).client.calls, 0);
});

test('hideCredentials removes the Authorization header from the upstream request', async () => {
  const { m } = await setup(json(200, ACTIVE));
  const hide = compileIntrospectionMethod({ server: 'as', hideCredentials: true }, testCompileEnv({ identity: { introspection: { as: { endpoint: 'http://127.0.0.1:1/x', clientId: 'a', clientSecret: 'b' } } } }).identity);
  const ctx = fakeContext({ headers: { Authorization: 'Bearer tok', 'X-Other': '1' } });
  m.hideCredentials?.(ctx);
  assert.deepEqual(ctx.plan!.fwd, ['Authorization', 'Bearer tok', 'X-Other', '1'], 'off by default');
  hide.hideCredentials?.(ctx);
  assert.deepEqual(ctx.plan!.fwd, ['X-Other', '1']);
});

test('a flood of distinct junk tokens: at most MAX_INTROSPECTION_CALLS calls in flight (the rest 503 at once), and refusals never evict a valid token from the cache', async () => {
  const held: http.ServerResponse[] = [];
  const { ep, m } = await setup((form, res) => {
    if (form.get('token') === 'valid-token') { json(200, ACTIVE)(form, res); return; }
    held.push(res);
  }, {}, undefined, 16);
  const valid = await call(m, 'valid-token');
  assert.equal(valid.ok, true);
  const outcomes = Array.from({ length: MAX_INTROSPECTION_CALLS + 50 }, (_, i) => call(m, `junk-${i}`));
  const immediate = outcomes.filter((o) => !(o instanceof Promise)) as AuthOutcome[];
  assert.equal(immediate.length, 50);
  assert.ok(immediate.every((o) => !o.ok && o.status === 503 && o.reason === 'introspection-unavailable'));
  await waitFor(() => held.length === MAX_INTROSPECTION_CALLS, { what: 'calls at the server' });
  for (const res of held.splice(0)) json(200, { active: false })(new URLSearchParams(), res);
  await Promise.all(outcomes);
  // far more refusals than the positive cache holds: the valid token is still answered from it
  const calls = ep.seen.length;
  const again = call(m, 'valid-token');
  assert.ok(!(again instanceof Promise) && again.ok);
  assert.equal(ep.seen.length, calls);
});
