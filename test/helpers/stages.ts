// Stage modules for pipeline tests: a stage with any name, order and config key, compiled from a plain
// function. Pass them to startGateway({ stages: [...STAGES, s] }); a route opts in with its config key
// (cast the route: `{ ...route, myKey: {} } as RouteConfig`), or `always: true` compiles it everywhere.
import { Type } from '@sinclair/typebox';
import type { AnyStageModule, CompiledStage, UpgradePolicy } from '../../src/pipeline/types.js';
import type { RouteConfig } from '../../src/config/schema.js';

export function testStage(opts: {
  name: string;
  order: number;
  configKey?: string;
  upgrades?: UpgradePolicy;
  always?: boolean;
  compile: (cfg: Record<string, unknown>) => CompiledStage | null;
}): AnyStageModule {
  return {
    name: opts.name,
    order: opts.order,
    configKey: opts.configKey ?? opts.name,
    schema: Type.Object({}, { additionalProperties: true }),
    upgrades: opts.upgrades ?? 'skip',
    ...(opts.always === true ? { always: true } : {}),
    docs: 'docs/pipeline.md',
    check: () => [],
    compile: (cfg) => opts.compile(cfg as Record<string, unknown>),
  };
}

/** A route with extra (test stage) blocks the registry's RouteConfig type does not know. */
export function withBlocks(route: RouteConfig, blocks: Record<string, unknown>): RouteConfig {
  return { ...route, ...blocks } as RouteConfig;
}
