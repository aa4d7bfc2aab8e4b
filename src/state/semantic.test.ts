// Config checks of the `state:` block: bad Redis Cluster seed URLs (named by path, never echoed) and a
// Redis response cache that would have no single endpoint.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { GatewayConfig } from '../config/schema.js';
import { checkSemantics } from '../config/semantic.js';
import { parseRedisNodeUrl } from './redis-url.js';

function withState(state: GatewayConfig['state'], extra: Partial<GatewayConfig> = {}): GatewayConfig {
  return {
    listeners: [{ name: 'http', address: '127.0.0.1', port: 8080 }],
    upstreams: { demo: { targets: [{ url: 'http://127.0.0.1:9000' }] } },
    routes: [{ id: 'root', match: { pathPrefix: '/' }, upstream: 'demo' }],
    state,
    ...extra,
  };
}
const errors = (cfg: GatewayConfig): [string, string][] => checkSemantics(cfg).filter((i) => i.severity === 'error').map((i) => [i.path, i.message]);

test('redis-cluster seeds: good URLs pass; a bad one is named by its path and never echoed', () => {
  assert.deepEqual(errors(withState({ type: 'redis-cluster', nodes: ['redis://10.0.0.1:7000', 'rediss://u:p%40ss@[::1]:7001'] })), []);
  const bad = errors(withState({ type: 'redis-cluster', nodes: ['redis://10.0.0.1:7000', 'redis://u:s3cret%zz@h:7001', 'redis://:7002'] }));
  assert.deepEqual(bad.map(([p]) => p), ['state.nodes[1]', 'state.nodes[2]']);
  assert.ok(bad.every(([, m]) => !m.includes('s3cret')));
});

test('parseRedisNodeUrl: host, default port, credentials, TLS and IPv6 brackets', () => {
  assert.deepEqual(parseRedisNodeUrl('rediss://u:p%40ss@[::1]:7001'), { host: '::1', port: 7001, username: 'u', password: 'p@ss', tls: true });
  assert.deepEqual(parseRedisNodeUrl('redis://cache.internal'), { host: 'cache.internal', port: 6379, tls: false });
  assert.equal(parseRedisNodeUrl('http://cache.internal:6379'), undefined);
});

test('a Redis response cache needs an endpoint: its own URL or a single-endpoint redis state', () => {
  const cached: Partial<GatewayConfig> = { routes: [{ id: 'root', match: { pathPrefix: '/' }, upstream: 'demo', cache: {} }] };
  const cluster = { type: 'redis-cluster' as const, nodes: ['redis://10.0.0.1:7000'] };
  assert.deepEqual(errors(withState(cluster, { ...cached, caching: { store: 'redis' } })).map(([p]) => p), ['caching.redis.url']);
  assert.deepEqual(errors(withState(undefined, { ...cached, caching: { store: 'redis' } })).map(([p]) => p), ['caching.redis.url']);
  assert.deepEqual(errors(withState(cluster, { ...cached, caching: { store: 'redis', redis: { url: 'redis://10.0.0.9:6379' } } })), []);
  assert.deepEqual(errors(withState({ type: 'redis', url: 'redis://10.0.0.9:6379/0' }, { ...cached, caching: { store: 'redis' } })), []);
});

test('state.url and caching.redis.url are checked like the seeds', () => {
  const bad = errors(withState({ type: 'redis', url: 'redis://:hunter2@[bad' }, { caching: { redis: { url: 'redis://:pw@' } } }));
  assert.deepEqual(bad.map(([p]) => p), ['state.url', 'caching.redis.url']);
  assert.ok(bad.every(([, m]) => !m.includes('hunter2')));
});
