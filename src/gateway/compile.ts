// Compile step: a validated configuration becomes a GatewayRuntime of plain closures and tables.
// Everything that can be decided once (routing tables, header sets, stage chains, limits) is decided here,
// so the request path only looks things up.
import type { GatewayConfig, RouteConfig, UpstreamConfig } from '../config/schema.js';
import { resolveLimits } from '../server/limits.js';
import { compileRouter, type RouteEntry } from '../routing/router.js';
import { parseCidrList } from '../net/cidr.js';
import { compileClientIpResolver } from '../net/client-ip.js';
import { createUpstream } from '../upstream/upstream.js';
import { UpstreamTlsConfigError } from '../upstream/tls.js';
import type { Upstream, UpstreamEvent } from '../upstream/types.js';
import * as requestId from '../server/request-id.js';
import * as accessLog from '../server/access-log.js';
import { compileRouteChain } from '../pipeline/chain.js';
import type { AnyStageModule } from '../pipeline/types.js';
import { STAGES } from '../pipeline/registry.js';
import { createBodyReader } from '../server/body-phase.js';
import { resolveBodyLimits } from '../body/index.js';
import { compileTransportSecurity } from '../server/transport-security/index.js';
import type { RequestContext } from '../pipeline/context.js';
import { ServicePool, serviceKey, type ServiceScope } from '../services/services.js';
import { SecurityEventBus } from '../observability/security-events.js';
import { createStateStore } from '../state/index.js';
import { compileLoadShedding } from '../stages/concurrency/overload.js';
import { credentialNames } from '../config/credentials.js';
import { createConsumerDirectory } from '../identity/consumers.js';
import type { IdentityEnv } from '../identity/env.js';
import type { Logger } from '../observability/logger.js';
import type { CompiledRoute, GatewayRuntime, ListenerRuntime } from './runtime.js';

export { DEFAULT_LIMITS, resolveLimits } from '../server/limits.js';

export interface CompileOptions {
  generation: number;
  logger: Logger;
  /**
   * upstream event sink (ejections, health changes). TLS security events (`tls-pin-mismatch`,
   * `tls-verify-failed`) are not passed here: they are logged at warn on `logger`.
   */
  onUpstreamEvent?: (name: string, e: UpstreamEvent) => void;
  /** disable the access log regardless of config (tests that want quiet output) */
  accessLog?: boolean;
  /** upstreams carried over unchanged from the previous generation (keeps pools and health state) */
  reuseUpstreams?: ReadonlyMap<string, Upstream>;
  /** directory relative file paths (upstream CA bundles, client certificates) resolve against; default the working directory */
  baseDir?: string;
  /** long-lived services (key stores, JWKS caches, state store) shared with other generations; default a fresh pool */
  services?: ServiceScope;
  /** the process's security event bus; default a private one */
  events?: SecurityEventBus;
  /** the stage modules (default: the registry, src/pipeline/registry.ts); tests add stages of their own */
  stages?: readonly AnyStageModule[];
}

/** Default limit of the response-body phase (routes[].limits.maxResponseBodyBytes). */
export const DEFAULT_MAX_RESPONSE_BODY_BYTES = 8 * 1024 * 1024;

export class CompileError extends Error {
  constructor(readonly path: string, message: string) { super(`${path}: ${message}`); }
}

export function compileGateway(cfg: GatewayConfig, opts: CompileOptions): GatewayRuntime {
  const trustedList = cfg.server?.trustedProxies ?? [];
  const trustedParsed = parseCidrList(trustedList);
  if (!trustedParsed.ok) {
    const e = trustedParsed.errors[0]!;
    throw new CompileError(`server.trustedProxies[${e.index}]`, e.reason);
  }
  const trusted = trustedParsed.matcher;

  const upstreams = new Map<string, Upstream>();
  for (const [name, ucfg] of Object.entries(cfg.upstreams ?? {})) {
    upstreams.set(name, opts.reuseUpstreams?.get(name) ?? newUpstream(name, ucfg, opts));
  }

  const listeners = new Map<string, ListenerRuntime>();
  const transport = compileTransportSecurity(cfg, opts.baseDir);
  for (const l of cfg.listeners) listeners.set(l.name, { config: l, limits: resolveLimits(l.limits), ...transport(l) });

  const services = opts.services ?? new ServicePool().scope();
  const baseDir = opts.baseDir ?? process.cwd();
  const events = opts.events ?? new SecurityEventBus();
  const state = services.use(serviceKey('state', cfg.state ?? { type: 'memory' }), () => createStateStore(cfg.state, { logger: opts.logger }));
  const identity: IdentityEnv = {
    config: cfg.identity ?? {},
    services,
    baseDir,
    logger: opts.logger,
    events,
    state,
    consumers: createConsumerDirectory(cfg.identity, services, baseDir, opts.logger),
  };

  const stages = opts.stages ?? STAGES;
  const entries: RouteEntry<CompiledRoute>[] = [];
  let needsHeaders = false;
  cfg.routes.forEach((r, i) => {
    if (r.match.headers !== undefined && Object.keys(r.match.headers).length > 0) needsHeaders = true;
    entries.push({ id: r.id, match: r.match, value: compileRoute(r, i, upstreams, identity, cfg, stages), ...(r.listeners ? { listeners: r.listeners } : {}) });
  });
  let router;
  try {
    router = compileRouter(entries);
  } catch (err) {
    throw new CompileError('routes', (err as Error).message);
  }

  return {
    generation: opts.generation,
    router,
    routerNeedsHeaders: needsHeaders,
    ownedRequestHeaders: ownedHeaders(cfg.routes, stages),
    services,
    events,
    trusted,
    resolveClientIp: compileClientIpResolver(trusted, { header: cfg.server?.clientIpHeader ?? 'auto' }),
    requestId: requestId.compile(cfg.requestId),
    accessLog: opts.accessLog === false ? undefined : accessLog.compile(cfg.accessLog, credentialNames(cfg.routes)),
    via: `1.1 ${cfg.server?.via ?? 'portcullis'}`,
    upstreams,
    listeners,
    logger: opts.logger,
    overload: compileLoadShedding(cfg.overload?.loadShedding, services, opts.logger),
    inflight: { count: 0, onIdle: undefined },
  };
}

/** Headers only the gateway may send upstream (identity headers stages write, e.g. clientCert.forwardHeader). */
function ownedHeaders(routes: readonly RouteConfig[], stages: readonly AnyStageModule[]): ReadonlySet<string> | undefined {
  const names = new Set<string>();
  for (const m of stages) for (const n of m.ownedRequestHeaders?.(routes) ?? []) names.add(n.toLowerCase());
  return names.size > 0 ? names : undefined;
}

function newUpstream(name: string, ucfg: UpstreamConfig, opts: CompileOptions): Upstream {
  const onEvent = (e: UpstreamEvent): void => {
    if (e.type === 'tls-pin-mismatch' || e.type === 'tls-verify-failed') {
      // Security event, once per failed handshake; the client only sees a generic 502.
      opts.logger.warn({ upstream: name, target: e.target, event: e }, `upstream ${name}: ${e.type === 'tls-pin-mismatch' ? 'certificate key matches no pin' : 'certificate verification failed'} (${e.target})`);
      opts.events?.emit({ type: 'upstream-tls', reason: e.type, route: '', clientIp: '', requestId: '', upstream: name, time: Date.now() });
      return;
    }
    opts.onUpstreamEvent?.(name, e);
  };
  try {
    return createUpstream(name, ucfg, { onEvent, baseDir: opts.baseDir });
  } catch (err) {
    if (err instanceof UpstreamTlsConfigError) throw new CompileError(err.path, err.reason);
    throw err;
  }
}

function compileRoute(r: RouteConfig, index: number, upstreams: ReadonlyMap<string, Upstream>, identity: IdentityEnv, config: GatewayConfig, stages: readonly AnyStageModule[]): CompiledRoute {
  const upstream = r.upstream !== undefined ? upstreams.get(r.upstream) : undefined;
  if (r.upstream !== undefined && upstream === undefined) throw new CompileError(`routes[${index}].upstream`, `unknown upstream "${r.upstream}"`);
  if ((upstream === undefined) === (r.respond === undefined)) throw new CompileError(`routes[${index}]`, 'a route needs exactly one of "upstream" or "respond"');
  // The route's decoding limits; a multipart file may use the whole body limit unless capped lower.
  const bodyLimits = resolveBodyLimits(r.limits?.body, r.limits?.maxBodyBytes);
  let chain;
  try {
    chain = compileRouteChain(r, { routeId: r.id, route: r, path: `routes[${index}]`, identity, config }, stages, () => createBodyReader(bodyLimits));
  } catch (err) {
    if (err instanceof CompileError) throw err;
    throw new CompileError(`routes[${index}]`, (err as Error).message);
  }
  return {
    id: r.id,
    steps: chain.steps,
    upgradeSteps: chain.upgradeSteps,
    onResponse: chain.onResponse,
    onResponseBody: chain.onResponseBody,
    responseBody: { maxBytes: r.limits?.maxResponseBodyBytes ?? DEFAULT_MAX_RESPONSE_BODY_BYTES, overflow: r.limits?.responseBodyOverflow ?? 'error' },
    onDone: chain.onDone,
    upgradeDone: chain.upgradeDone,
    upstream,
    respond: r.respond !== undefined ? {
      status: r.respond.status,
      body: Buffer.from(r.respond.body ?? ''),
      contentType: r.respond.contentType ?? 'text/plain; charset=utf-8',
    } : undefined,
    rewritePath: compileRewrite(r),
    websocket: r.websocket ?? false,
    preserveHost: r.preserveHost ?? false,
    exposeUpstreamErrors: r.exposeUpstreamErrors ?? false,
    maxBodyBytes: r.limits?.maxBodyBytes,
  };
}

/**
 * stripPrefix removes a leading path (on a segment boundary); rewritePath replaces the path, substituting
 * `:name` with the matched parameter and `*` with the wildcard remainder. Both work on the decoded,
 * normalized path; the proxy re-encodes the result canonically.
 */
function compileRewrite(r: RouteConfig): ((ctx: RequestContext) => string) | undefined {
  if (r.rewritePath !== undefined) {
    const parts = r.rewritePath.split(/(:[A-Za-z_][A-Za-z0-9_]*|\*)/).filter((p) => p !== '');
    return (ctx) => {
      let out = '';
      for (const p of parts) {
        if (p === '*') out += ctx.wildcard ?? '';
        else if (p.charCodeAt(0) === 58 /* : */) out += ctx.params[p.slice(1)] ?? '';
        else out += p;
      }
      return collapseSlashes(out);
    };
  }
  if (r.stripPrefix !== undefined) {
    const prefix = r.stripPrefix.endsWith('/') ? r.stripPrefix.slice(0, -1) : r.stripPrefix;
    // A case-insensitive route matched '/API/x' for prefix '/api': strip that too, as the router folds (ASCII only).
    const starts = r.match.caseInsensitive === true ? (p: string) => startsWithAsciiCI(p, prefix) : (p: string) => p.startsWith(prefix);
    return (ctx) => {
      const p = ctx.path;
      if (!starts(p)) return p;
      if (p.length === prefix.length) return '/';
      if (p.charCodeAt(prefix.length) === 47 /* / */) return p.slice(prefix.length);
      return p;
    };
  }
  return undefined;
}

function startsWithAsciiCI(s: string, prefix: string): boolean {
  if (s.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) {
    let a = s.charCodeAt(i);
    let b = prefix.charCodeAt(i);
    if (a >= 65 && a <= 90) a += 32;
    if (b >= 65 && b <= 90) b += 32;
    if (a !== b) return false;
  }
  return true;
}

function collapseSlashes(p: string): string {
  const out = p.replace(/\/{2,}/g, '/');
  return out.startsWith('/') ? out : `/${out}`;
}
