import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { GatewayConfig, RouteConfig } from '../../config/schema.js';
import { concurrencyIssues } from './semantic.js';

function cfg(routes: Partial<RouteConfig>[], overload?: GatewayConfig['overload']): GatewayConfig {
  return {
    listeners: [{ name: 'main', port: 0 }],
    upstreams: { backend: { targets: [{ url: 'http://127.0.0.1:1' }] } },
    routes: routes.map((r, i) => ({ id: `r${i}`, match: { pathPrefix: '/' }, upstream: 'backend', ...r })) as RouteConfig[],
    ...(overload !== undefined ? { overload } : {}),
  };
}

const paths = (issues: ReturnType<typeof concurrencyIssues>, severity: 'error' | 'warning') =>
  issues.filter((i) => i.severity === severity).map((i) => i.path);

describe('concurrencyIssues', () => {
  it('a sensible configuration has no issues', () => {
    const issues = concurrencyIssues(cfg(
      [{ concurrency: { maxInFlight: 100, perConsumer: { maxInFlight: 10 }, queue: { maxQueue: 50 } }, authentication: { methods: [{ apiKey: {} }] } as RouteConfig['authentication'] }],
      { upstreams: { backend: { maxInFlight: 200 } }, loadShedding: { eventLoopLagMs: 200 } },
    ));
    assert.deepEqual(issues, []);
  });

  it('an upstream bulkhead must name an upstream', () => {
    const issues = concurrencyIssues(cfg([{}], { upstreams: { backnd: { maxInFlight: 1 } } }));
    assert.deepEqual(paths(issues, 'error'), ['overload.upstreams.backnd']);
    assert.match(issues[0]!.message, /did you mean "backend"/);
  });

  it('warns about limits that do nothing or cannot be reached', () => {
    const issues = concurrencyIssues(cfg([
      { concurrency: {} },
      { concurrency: { queue: { maxQueue: 5 } } },
      { concurrency: { maxInFlight: 5, perConsumer: { maxInFlight: 5 } } },
      { concurrency: { maxInFlight: 5 }, websocket: true },
    ]));
    assert.deepEqual(paths(issues, 'error'), []);
    assert.deepEqual(paths(issues, 'warning'), [
      'routes[0].concurrency',
      'routes[1].concurrency',
      'routes[1].concurrency.queue',
      'routes[2].concurrency.perConsumer.maxInFlight',
      'routes[2].concurrency.perConsumer',
      'routes[3].concurrency',
    ]);
  });

  it('an empty block is fine when the upstream has a bulkhead', () => {
    assert.deepEqual(concurrencyIssues(cfg([{ concurrency: {} }], { upstreams: { backend: { maxInFlight: 5 } } })), []);
  });

  it('warns about a load-shedding threshold that garbage collection alone would trip', () => {
    const issues = concurrencyIssues(cfg([{}], { loadShedding: { eventLoopLagMs: 5, sampleIntervalMs: 5000 } }));
    assert.deepEqual(paths(issues, 'warning'), ['overload.loadShedding.eventLoopLagMs', 'overload.loadShedding.sampleIntervalMs']);
  });
});
