import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { GatewayConfig, RouteConfig } from '../../config/schema.js';
import { authenticationIssues } from './semantic.js';

function cfg(route: Partial<RouteConfig>): GatewayConfig {
  return {
    listeners: [{ name: 'http', port: 8080 }],
    upstreams: { demo: { targets: [{ url: 'http://127.0.0.1:9000' }] } },
    routes: [{ id: 'r', match: {}, upstream: 'demo', ...route }],
  };
}
const issues = (c: GatewayConfig, severity: 'error' | 'warning') => authenticationIssues(c).filter((i) => i.severity === severity).map((i) => `${i.path}: ${i.message}`);

describe('authentication config checks', () => {
  it('accepts a sound block', () => {
    assert.deepEqual(authenticationIssues(cfg({ authentication: { methods: [{ apiKey: {} }, { jwt: { issuers: ['a'] } }], forward: { consumer: 'X-Consumer-Id' } } })), []);
  });

  it('refuses forward headers the gateway, the connection or a credential owns', () => {
    const e = issues(cfg({ authentication: { methods: [{ apiKey: { header: 'X-Key' } }], forward: { consumer: 'Host', subject: 'x-request-id', scopes: 'Authorization', roles: 'X-Key' } } }), 'error');
    assert.equal(e.length, 4, e.join('\n'));
    assert.match(e[0]!, /routes\[0\]\.authentication\.forward\.consumer/);
  });

  it('refuses one header for two identity fields, and a fixed value that would replace the identity', () => {
    const e = issues(cfg({
      authentication: { methods: [{ apiKey: {} }], forward: { consumer: 'X-Id', subject: 'x-id' } },
      requestHeaders: { set: { 'X-Id': 'fixed' } },
    }), 'error');
    assert.ok(e.some((m) => /already used/.test(m)), e.join('\n'));
    assert.ok(e.some((m) => /requestHeaders\.set/.test(m)), e.join('\n'));
  });

  it('an API-key method that reads from nowhere is an error; query keys and shadowed methods warn', () => {
    assert.equal(issues(cfg({ authentication: { methods: [{ apiKey: { header: false, authorizationScheme: false } }] } }), 'error').length, 1);
    const w = issues(cfg({ authentication: { methods: [{ apiKey: { queryParam: 'k' } }, { apiKey: {} }] } }), 'warning');
    assert.equal(w.length, 2, w.join('\n'));
  });
});
