// The route-level stage registry: which stage modules exist, where each one's configuration lives on a
// route, and the fixed order they run in (STAGE_ORDER). Adding a stage = one line here plus its folder.
import type { RouteConfig } from '../config/schema.js';
import { STAGE_ORDER, type CompileEnv, type CompiledStage, type StageModule } from './types.js';
import { requestHeadersStage, responseHeadersStage } from '../stages/headers/headers.js';
import { clientCertStage } from '../stages/client-cert/client-cert.js';
import { attestationStage } from '../stages/attestation/attestation.js';
import { authenticationStage } from '../stages/authentication/authentication.js';
import { authorizationStage } from '../stages/authorization/authorization.js';
import { rateLimitStage } from '../stages/rate-limit/rate-limit.js';
import { concurrencyStage } from '../stages/concurrency/concurrency.js';
import { cacheStage } from '../stages/cache/cache.js';

export interface RouteStageBinding {
  readonly module: StageModule<unknown>;
  /** the stage's config block on a route, or undefined when the route does not use the stage */
  select(route: RouteConfig): unknown;
}

function bind<C>(module: StageModule<C>, select: (r: RouteConfig) => C | undefined): RouteStageBinding {
  return { module: module as StageModule<unknown>, select };
}

export const ROUTE_STAGES: readonly RouteStageBinding[] = [
  bind(clientCertStage, (r) => r.clientCert),
  bind(attestationStage, (r) => r.attestation),
  bind(authenticationStage, (r) => r.authentication),
  bind(authorizationStage, (r) => r.authorization),
  bind(rateLimitStage, (r) => r.rateLimit),
  // always compiled: a route without a block still passes its upstream's bulkhead (overload.upstreams)
  bind(concurrencyStage, (r) => r.concurrency ?? {}),
  bind(cacheStage, (r) => r.cache),
  bind(requestHeadersStage, (r) => r.requestHeaders),
  bind(responseHeadersStage, (r) => r.responseHeaders),
].sort((a, b) => STAGE_ORDER[a.module.name] - STAGE_ORDER[b.module.name]);

/** Compiles every stage a route uses, in stage order. */
export function compileRouteStages(route: RouteConfig, env: CompileEnv): CompiledStage[] {
  const out: CompiledStage[] = [];
  for (const b of ROUTE_STAGES) {
    const cfg = b.select(route);
    if (cfg === undefined) continue;
    const compiled = b.module.compile(cfg, env);
    if (compiled !== null) out.push(compiled);
  }
  return out;
}
