// Builds one route's chain from the stage registry: each registered stage whose block the route has (or
// that is `always` on) is compiled, in `order`; its handlers go into the route's per-phase lists. The
// request-body phase is inserted right before the first stage that needs the body, so stages in front of it
// (client certificates, authentication, rate limits) refuse a request before its body is read.
import type { RouteConfig } from '../config/schema.js';
import type { AnyStageModule, CompileEnv, CompiledStage } from './types.js';
import type { DoneHandlerFn, RequestStep, ResponseBodyHandlerFn, ResponseHandlerFn } from '../gateway/runtime.js';

export interface RouteChain {
  readonly steps: readonly RequestStep[];
  readonly upgradeSteps: readonly RequestStep[];
  readonly onResponse: readonly ResponseHandlerFn[];
  readonly onResponseBody: readonly ResponseBodyHandlerFn[];
  readonly onDone: readonly DoneHandlerFn[];
  readonly upgradeDone: readonly DoneHandlerFn[];
  /** true when some stage needs the request body (the chain contains the body reader) */
  readonly readsBody: boolean;
}

/** The registered modules in chain order (stable: equal orders keep registry order). */
export function orderedStages(stages: readonly AnyStageModule[]): AnyStageModule[] {
  return [...stages].sort((a, b) => a.order - b.order);
}

/** The stage's block on this route, `{}` for an `always` stage without one, undefined when not used. */
export function stageConfigOf(m: AnyStageModule, route: RouteConfig): unknown {
  const v = (route as Record<string, unknown>)[m.configKey];
  return v === undefined && m.always === true ? {} : v;
}

export function compileRouteChain(route: RouteConfig, env: CompileEnv, stages: readonly AnyStageModule[], bodyReader: () => RequestStep): RouteChain {
  const steps: RequestStep[] = [];
  const upgradeSteps: RequestStep[] = [];
  const onResponse: ResponseHandlerFn[] = [];
  const onResponseBody: ResponseBodyHandlerFn[] = [];
  const onDone: DoneHandlerFn[] = [];
  const upgradeDone: DoneHandlerFn[] = [];
  let readsBody = false;
  for (const m of orderedStages(stages)) {
    const cfg = stageConfigOf(m, route);
    if (cfg === undefined) continue;
    // A compile error names its own path inside the block (e.g. `authentication.methods[0]: ...`).
    const c: CompiledStage | null = m.compile(cfg, env);
    if (c === null) continue;
    if (c.needsRequestBody === true && !readsBody) {
      readsBody = true;
      steps.push(bodyReader());
    }
    if (c.onRequest !== undefined) steps.push(c.onRequest);
    if (c.onResponse !== undefined) onResponse.push(c.onResponse);
    if (c.onResponseBody !== undefined) onResponseBody.push(c.onResponseBody);
    if (c.onDone !== undefined) onDone.push(c.onDone);
    if (m.upgrades === 'run') {
      if (c.onRequest !== undefined) upgradeSteps.push(c.onRequest);
      if (c.onDone !== undefined) upgradeDone.push(c.onDone);
    }
  }
  return { steps, upgradeSteps, onResponse, onResponseBody, onDone, upgradeDone, readsBody };
}
