// A CompileEnv for unit tests of a single stage's compile step (no gateway around it).
import type { CompileEnv } from '../../src/pipeline/types.js';
import type { GatewayConfig, RouteConfig } from '../../src/config/schema.js';
import type { IdentityConfig } from '../../src/identity/schema.js';
import { ServicePool } from '../../src/services/services.js';
import { SecurityEventBus } from '../../src/observability/security-events.js';
import { silentLogger } from '../../src/observability/logger.js';
import { createStateStore } from '../../src/state/index.js';
import { configConsumers, consumerDirectory } from '../../src/identity/consumers.js';
import type { StateStore } from '../../src/state/types.js';

export function testCompileEnv(opts: { route?: Partial<RouteConfig>; config?: Partial<GatewayConfig>; identity?: IdentityConfig; events?: SecurityEventBus; state?: StateStore; baseDir?: string } = {}): CompileEnv {
  const route = { id: 'r', match: { pathPrefix: '/' }, ...opts.route } as RouteConfig;
  return {
    routeId: route.id,
    route,
    path: 'routes[0]',
    config: { listeners: [{ name: 'main', port: 0 }], routes: [route], ...opts.config } as GatewayConfig,
    identity: {
      config: opts.identity ?? {},
      services: new ServicePool().scope(),
      baseDir: opts.baseDir ?? process.cwd(),
      logger: silentLogger,
      events: opts.events ?? new SecurityEventBus(),
      state: opts.state ?? createStateStore(undefined),
      consumers: consumerDirectory(configConsumers(opts.identity)),
    },
  };
}
