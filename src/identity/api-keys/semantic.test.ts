import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { apiKeyIssues } from './semantic.js';
import type { GatewayConfig, RouteConfig } from '../../config/schema.js';
import type { IdentityConfig } from '../schema.js';

const H = (c: string) => `hmac-sha256:${c.repeat(64)}`;
const route = (apiKey: object = {}): RouteConfig => ({ id: 'r', match: { pathPrefix: '/' }, respond: { status: 200 }, authentication: { methods: [{ apiKey }] } } as RouteConfig);
const cfg = (identity: IdentityConfig | undefined, routes: RouteConfig[] = [route()], extra: Partial<GatewayConfig> = {}): GatewayConfig =>
  ({ listeners: [{ name: 'main', address: '127.0.0.1', port: 0 }], routes, ...(identity ? { identity } : {}), ...extra });
const PEPPER = 'x'.repeat(32);

describe('apiKeyIssues', () => {
  it('pepper is required when a route takes API keys or consumers have keys', () => {
    assert.deepEqual(apiKeyIssues(cfg(undefined)).map((i) => [i.path, i.severity]), [['identity', 'error'], ['identity', 'warning']]);
    const noRoute = apiKeyIssues(cfg({ consumers: [{ id: 'a', apiKeys: [{ id: 'k', hash: H('a') }] }] }, []));
    assert.deepEqual(noRoute.map((i) => i.path), ['identity.pepper']);
    assert.deepEqual(apiKeyIssues(cfg({ pepper: PEPPER, keyStore: { type: 'sqlite', path: 'k.db' } })), []);
  });

  it('duplicate consumer ids, key ids and hashes; bad CIDRs and origins; expired keys', () => {
    const issues = apiKeyIssues(cfg({
      pepper: PEPPER,
      consumers: [
        { id: 'a', apiKeys: [{ id: 'k1', hash: H('a'), cidrs: ['10.0.0.1/8', 'nonsense'] }, { id: 'k2', hash: H('a'), expiresAt: '2020-01-01T00:00:00Z' }] },
        { id: 'a', apiKeys: [{ id: 'k1', hash: H('b'), origins: ['https://x.example/path'] }] },
      ],
    }));
    const got = issues.map((i) => `${i.severity} ${i.path}`);
    assert.deepEqual(got, [
      'error identity.consumers[0].apiKeys[0].cidrs[0]',
      'error identity.consumers[0].apiKeys[0].cidrs[1]',
      'error identity.consumers[0].apiKeys[1].hash',
      'warning identity.consumers[0].apiKeys[1].expiresAt',
      'error identity.consumers[1].id',
      'error identity.consumers[1].apiKeys[0].id',
      'error identity.consumers[1].apiKeys[0].origins[0]',
    ]);
  });

  it('header: Authorization is an error; a query key kept upstream and not redacted is a warning', () => {
    const id = { pepper: PEPPER, keyStore: { type: 'sqlite' as const, path: 'k.db' } };
    assert.deepEqual(apiKeyIssues(cfg(id, [route({ header: 'Authorization' })])).map((i) => i.path), ['routes[0].authentication.methods[0].apiKey.header']);
    assert.equal(apiKeyIssues(cfg(id, [route({ queryParam: 'token2', hideCredentials: false })])).length, 1);
    assert.equal(apiKeyIssues(cfg(id, [route({ queryParam: 'token2' })])).length, 0);
    assert.equal(apiKeyIssues(cfg(id, [route({ queryParam: 'token2', hideCredentials: false })], { accessLog: { redactQuery: ['Token2'] } })).length, 0);
  });
});
