import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compileAuthentication, identityForwardHeaderNames } from './authentication.js';
import type { AuthMethod, AuthOutcome } from './types.js';
import type { Rejection } from '../../pipeline/types.js';
import type { RequestContext } from '../../pipeline/context.js';
import type { RouteConfig } from '../../config/schema.js';
import { SecurityEventBus, type SecurityEvent } from '../../observability/security-events.js';
import { fakeContext } from '../../../test/helpers/fake-context.js';

/** A method that finds its credential in header `name` and accepts the value 'good'. */
function headerMethod(kind: string, name: string, schemes: string[], calls: string[] = [], async = false): AuthMethod {
  return {
    kind,
    challengeSchemes: schemes,
    authenticate(ctx: RequestContext) {
      const v = ctx.req.headers[name];
      if (v === undefined) return undefined;
      calls.push(kind);
      const o: AuthOutcome = v === 'good'
        ? { ok: true, identity: { id: `${kind}-user`, kind, consumer: 'alice', subject: 'sub-1', scopes: ['a', 'b'], roles: ['admin'], claims: { email: 'a@x', org: { id: 7 }, evil: 'x\r\nInjected: 1' } } }
        : v === 'down' ? { ok: false, status: 503, reason: `${kind}-unavailable` }
          : v === 'elsewhere' ? { ok: false, status: 403, reason: `${kind}-ip-not-allowed`, consumer: 'alice', credentialId: 'k1' }
            : { ok: false, status: 401, reason: `${kind}-bad`, error: 'invalid_token', description: 'token expired' };
      return async ? Promise.resolve(o) : o;
    },
    hideCredentials(ctx) { ctx.plan!.fwd.push('x-hidden', kind); },
  };
}

function setup(cfg: Partial<Parameters<typeof compileAuthentication>[0]> = {}, async = false) {
  const events: SecurityEvent[] = [];
  const bus = new SecurityEventBus();
  bus.subscribe((e) => events.push(e));
  const calls: string[] = [];
  const stage = compileAuthentication(
    { methods: [{ apiKey: {} }], ...cfg },
    [headerMethod('api-key', 'x-api-key', ['ApiKey'], calls, async), headerMethod('jwt', 'authorization', ['DPoP', 'Bearer'], calls, async)],
    'orders', bus,
  );
  const run = async (headers: Record<string, string>) => {
    const ctx = fakeContext({ headers });
    const out = (await stage.onRequest!(ctx)) as Rejection | undefined;
    return { out, ctx };
  };
  return { run, events, calls };
}

describe('authentication stage', () => {
  it('no credential: 401 with one challenge per scheme and no error code (RFC 6750 3.1)', async () => {
    const { run, events } = setup({ realm: 'api' });
    const { out } = await run({});
    assert.equal(out?.status, 401);
    assert.equal(out?.code, 'authentication-required');
    assert.equal(out?.headers?.['www-authenticate'], 'ApiKey realm="api", DPoP realm="api", algs="ES256 RS256 PS256 EdDSA", Bearer realm="api"');
    assert.equal(events.length, 1);
    assert.equal(events[0]!.reason, 'credentials-missing');
    assert.equal(events[0]!.route, 'orders');
  });

  it('the first method that finds its credential decides; no fall-through after a bad one', async () => {
    const { run, calls, events } = setup();
    const { out } = await run({ 'x-api-key': 'bad', authorization: 'good' });
    assert.equal(out?.status, 401);
    assert.equal(out?.code, 'invalid-credentials');
    assert.deepEqual(calls, ['api-key']);
    assert.equal(events[0]!.reason, 'api-key-bad');
    assert.equal(events[0]!.method, 'api-key');
    // the failing scheme carries the error, the others are offered plainly
    assert.equal(out?.headers?.['www-authenticate'], 'ApiKey error="invalid_token", error_description="token expired", DPoP algs="ES256 RS256 PS256 EdDSA", Bearer');
  });

  it('a later method is used when earlier ones find nothing', async () => {
    const { run, calls } = setup();
    const { out, ctx } = await run({ authorization: 'good' });
    assert.equal(out, undefined);
    assert.deepEqual(calls, ['jwt']);
    assert.equal(ctx.identity?.kind, 'jwt');
    assert.ok(ctx.plan!.fwd.includes('x-hidden'), 'hideCredentials hook ran');
  });

  it('async methods settle the same way', async () => {
    const { run } = setup({}, true);
    assert.equal((await run({ authorization: 'good' })).out, undefined);
    assert.equal((await run({ authorization: 'bad' })).out?.status, 401);
  });

  it('403 and 503 failures: generic detail, Retry-After on 503, consumer in the event', async () => {
    const { run, events } = setup();
    const forbidden = (await run({ 'x-api-key': 'elsewhere' })).out!;
    assert.equal(forbidden.status, 403);
    assert.equal(forbidden.code, 'credentials-not-allowed');
    assert.equal(forbidden.headers?.['www-authenticate'], undefined);
    assert.equal(events[0]!.consumer, 'alice');
    assert.equal(events[0]!.credentialId, 'k1');
    const down = (await run({ authorization: 'down' })).out!;
    assert.equal(down.status, 503);
    assert.equal(down.headers?.['retry-after'], '1');
  });

  it('anonymous: requests without credentials pass as the anonymous identity, bad credentials still fail', async () => {
    const { run } = setup({ anonymous: { id: 'guest' } });
    const { out, ctx } = await run({});
    assert.equal(out, undefined);
    assert.deepEqual(ctx.identity, { id: 'guest', kind: 'anonymous' });
    assert.equal((await run({ 'x-api-key': 'bad' })).out?.status, 401);
  });

  it('forwards identity headers, skipping values that would break the header', async () => {
    const { run } = setup({ forward: { consumer: 'X-Consumer-Id', subject: 'X-Subject', scopes: 'X-Scopes', roles: 'X-Roles', method: 'X-Auth-Method', claims: { email: 'X-Email', 'org.id': 'X-Org', evil: 'X-Evil', missing: 'X-Missing' } } });
    const { ctx } = await run({ authorization: 'good' });
    const fwd = ctx.plan!.fwd;
    const pairs = new Map<string, string>();
    for (let i = 0; i < fwd.length; i += 2) pairs.set(fwd[i]!, fwd[i + 1]!);
    assert.equal(pairs.get('x-consumer-id'), 'alice');
    assert.equal(pairs.get('x-subject'), 'sub-1');
    assert.equal(pairs.get('x-scopes'), 'a b');
    assert.equal(pairs.get('x-roles'), 'admin');
    assert.equal(pairs.get('x-auth-method'), 'jwt');
    assert.equal(pairs.get('x-email'), 'a@x');
    assert.equal(pairs.get('x-org'), '7');
    assert.equal(pairs.has('x-evil'), false);
    assert.equal(pairs.has('x-missing'), false);
  });

  it('collects forwarded header names of every route (client copies are stripped everywhere)', () => {
    const routes = [
      { id: 'a', match: {}, authentication: { methods: [{ apiKey: {} }], forward: { consumer: 'X-Consumer-Id', claims: { email: 'X-Email' } } } },
      { id: 'b', match: {} },
    ] as unknown as RouteConfig[];
    assert.deepEqual(identityForwardHeaderNames(routes).sort(), ['x-consumer-id', 'x-email']);
  });
});
