// Rate-limit stage: fixed window, sliding window (weighted counter) and token bucket (GCRA) limits keyed
// by client IP, consumer, API key, claim, header and route; consumer plans; throttling (`mode: delay`).
// All limits of a request are checked and counted in one store call (one Redis round trip). With the
// memory store in a single process the whole decision is synchronous: no Promise on the hot path.
// See docs/rate-limiting.md.
import { createHash } from 'node:crypto';
import { Counter, register } from 'prom-client';
import type { CompiledStage, CompileEnv, Rejection, StageModule, StageOutcome } from '../../pipeline/types.js';
import { StageSlot, type RequestContext } from '../../pipeline/context.js';
import type { HeaderList } from '../../pipeline/header-list.js';
import type { RateCheck, RateResult, StateStore } from '../../state/types.js';
import { LocalMemoryStore } from '../../state/memory.js';
import type { Logger } from '../../observability/logger.js';
import type { SecurityEventBus } from '../../observability/security-events.js';
import { RateLimitSchema, RateLimitGlobalSchema, type RateLimitConfig, type RateLimitRule, type RateKeyPart } from './schema.js';
import { rateLimitIssues } from './semantic.js';
import { claimAt } from '../../identity/claims.js';
import { ALG_FIXED, ALG_GCRA, ALG_SLIDING, seconds, type Algorithm } from '../../state/rate-algorithms.js';

/** [RateLimit-Policy, RateLimit] of the limits that admitted the request, when response headers are on */
const kHeaders = new StageSlot<readonly [string, string]>('rate-limit.headers');

type PartFn = (ctx: RequestContext) => string;

interface CompiledLimit {
  readonly alg: Algorithm;
  readonly name: string;
  /** key prefix: identifies the limit (route or plan, index, algorithm) */
  readonly scope: string;
  readonly parts: readonly PartFn[];
  readonly limit: number;
  readonly windowMs: number;
  readonly burst: number;
  readonly delay: boolean;
  readonly maxDelayMs: number;
  readonly maxQueue: number;
}

interface LimitSet {
  readonly limits: readonly CompiledLimit[];
  /** RateLimit-Policy header value (draft-ietf-httpapi-ratelimit-headers-10) */
  readonly policy: string;
}

const ALGS: Readonly<Record<string, Algorithm>> = { 'fixed-window': ALG_FIXED, 'sliding-window': ALG_SLIDING, 'token-bucket': ALG_GCRA };
const ALG_TAG = ['f', 's', 't'] as const;
/** key-part values longer than this are hashed (bounded key size whatever a client sends) */
const MAX_PART = 128;
const DEFAULT_MAX_DELAY_MS = 1000;
const DEFAULT_MAX_QUEUE = 100;
/** at most one store-error log line per this interval per process */
const ERROR_LOG_INTERVAL_MS = 10_000;
/** local limiter used when the shared store fails and the route fails open: per process */
const FALLBACK_MAX_KEYS = 100_000;

let fallbackStore: LocalMemoryStore | undefined;
let lastErrorLog = 0;
let suppressedErrors = 0;
let storeErrors: Counter<'route'> | undefined;

function storeErrorCounter(): Counter<'route'> {
  storeErrors ??= (register.getSingleMetric('portcullis_rate_limit_store_errors_total') as Counter<'route'> | undefined)
    ?? new Counter({ name: 'portcullis_rate_limit_store_errors_total', help: 'Rate-limit decisions the shared state store could not make (fallback or fail closed)', labelNames: ['route'] });
  return storeErrors;
}

function esc(v: string): string {
  if (v.length > MAX_PART) return '#' + createHash('sha256').update(v).digest('base64url');
  return v.includes('|') || v.includes('%') ? v.replace(/%/g, '%25').replace(/\|/g, '%7C') : v;
}

const ipPart: PartFn = (ctx) => 'i:' + ctx.clientIp;

function compilePart(p: RateKeyPart, routeId: string): PartFn {
  if (p === 'ip') return ipPart;
  if (p === 'route') { const r = 'r:' + routeId; return () => r; }
  if (p === 'consumer') {
    return (ctx) => {
      const id = ctx.identity;
      return id === undefined || id.kind === 'anonymous' ? 'i:' + ctx.clientIp : 'c:' + esc(id.consumer ?? id.id);
    };
  }
  if (p === 'apiKey') {
    return (ctx) => {
      const k = ctx.identity?.keyId;
      return k === undefined ? 'i:' + ctx.clientIp : 'k:' + esc(k);
    };
  }
  if ('header' in p) {
    const name = p.header.toLowerCase();
    return (ctx) => {
      const v = ctx.req.headers[name];
      if (v === undefined || v === '') return 'i:' + ctx.clientIp;
      return 'h:' + esc(typeof v === 'string' ? v : v.join(','));
    };
  }
  const full = p.claim;
  const segments = full.split('.');
  return (ctx) => {
    const v = claimAt(ctx.identity?.claims, full, segments);
    if (typeof v === 'string' ? v === '' : typeof v !== 'number' && typeof v !== 'boolean') return 'i:' + ctx.clientIp;
    return 'j:' + esc(String(v));
  };
}

function compileLimit(r: RateLimitRule, scope: string, name: string, routeId: string, defaultBy: readonly RateKeyPart[]): CompiledLimit {
  const alg = ALGS[r.algorithm ?? 'fixed-window']!;
  const delay = r.mode === 'delay';
  if (delay && alg !== ALG_GCRA) throw new Error(`rate limit "${name}": mode delay needs algorithm token-bucket (it gives each request an exact slot)`);
  return {
    alg,
    name,
    scope: `${scope}:${ALG_TAG[alg]}`,
    parts: (r.by ?? defaultBy).map((p) => compilePart(p, routeId)),
    limit: r.limit,
    windowMs: r.windowMs,
    burst: r.burst ?? r.limit,
    delay,
    maxDelayMs: delay ? r.maxDelayMs ?? DEFAULT_MAX_DELAY_MS : 0,
    maxQueue: r.maxQueue ?? DEFAULT_MAX_QUEUE,
  };
}

function policyHeader(limits: readonly CompiledLimit[]): string {
  return limits.map((l) => `"${l.name}";q=${l.alg === ALG_GCRA ? l.burst : l.limit};w=${Math.max(1, Math.ceil((l.alg === ALG_GCRA ? (l.windowMs / l.limit) * l.burst : l.windowMs) / 1000))}`).join(', ');
}

/** The current RateLimit header value for an answer `r` of the store. */
function rateLimitValue(limits: readonly CompiledLimit[], r: RateResult): string {
  let s = '';
  for (let i = 0; i < limits.length; i++) {
    if (i > 0) s += ', ';
    s += `"${limits[i]!.name}";r=${r[2 + 3 * i]!};t=${seconds(r[3 + 3 * i]!)}`;
  }
  return s;
}

export class RateLimiter implements CompiledStage {
  readonly name = 'rate-limit';
  readonly onRequest: (ctx: RequestContext) => StageOutcome | Promise<StageOutcome>;
  readonly onResponse: ((ctx: RequestContext, status: number, headers: HeaderList) => void) | undefined;
  /** the store answers synchronously (memory store, single process) */
  private readonly local: LocalMemoryStore | undefined;
  /** requests waiting (delay mode) per key, in this process */
  private readonly queued = new Map<string, number>();

  constructor(
    private readonly routeId: string,
    private readonly routeSet: LimitSet,
    private readonly planSets: ReadonlyMap<string, LimitSet> | undefined,
    private readonly planKey: string,
    private readonly defaultSet: LimitSet,
    private readonly store: StateStore,
    private readonly failOpen: boolean,
    headers: boolean,
    private readonly log: Logger,
    private readonly events: SecurityEventBus,
  ) {
    this.local = store instanceof LocalMemoryStore ? store : undefined;
    this.onRequest = (ctx) => this.check(ctx);
    this.onResponse = headers ? (ctx, _status, h) => this.addHeaders(ctx, h) : undefined;
  }

  /** The limits that apply to this request: the route's, plus its identity's plan when plans are on. */
  pick(ctx: RequestContext): LimitSet {
    if (this.planSets === undefined) return this.routeSet;
    const plan = ctx.identity?.metadata?.[this.planKey];
    return (typeof plan === 'string' ? this.planSets.get(plan) : undefined) ?? this.defaultSet;
  }

  check(ctx: RequestContext): StageOutcome | Promise<StageOutcome> {
    const set = this.pick(ctx);
    const ls = set.limits;
    if (ls.length === 0) return undefined;
    const checks = new Array<RateCheck>(ls.length);
    for (let i = 0; i < ls.length; i++) {
      const l = ls[i]!;
      let key = l.scope;
      for (let j = 0; j < l.parts.length; j++) key += '|' + l.parts[j]!(ctx);
      // A full queue turns this request's throttle into a plain check: admitted now or refused.
      const maxDelay = l.delay && (this.queued.get(key) ?? 0) < l.maxQueue ? l.maxDelayMs : 0;
      checks[i] = [l.alg, key, l.limit, l.windowMs, l.burst, maxDelay];
    }
    if (this.local !== undefined) return this.finish(ctx, set, checks, this.local.rateLimitSync(checks));
    return this.store.rateLimit(checks).then(
      (r) => this.finish(ctx, set, checks, r),
      (err: unknown) => this.storeFailed(ctx, set, checks, err),
    );
  }

  private finish(ctx: RequestContext, set: LimitSet, checks: readonly RateCheck[], r: RateResult): StageOutcome | Promise<StageOutcome> {
    const ls = set.limits;
    if (r[0] === 1) {
      if (this.onResponse !== undefined) kHeaders.set(ctx, [set.policy, rateLimitValue(ls, r)]);
      const delay = r[1]!;
      return delay > 0 ? this.hold(ctx, set, checks, delay) : undefined;
    }
    let retry = 0;
    let throttled = false;
    for (let i = 0; i < ls.length; i++) {
      const ms = r[4 + 3 * i]!;
      if (ms > retry) retry = ms;
      if (ms > 0 && ls[i]!.delay) throttled = true;
    }
    const sec = seconds(retry) || 1;
    this.emit(ctx, throttled ? 'throttle-exceeded' : 'limit-exceeded');
    return {
      status: 429,
      code: 'rate-limited',
      detail: `Too many requests; retry after ${sec} s`,
      headers: { 'retry-after': String(sec), 'ratelimit-policy': set.policy, ratelimit: rateLimitValue(ls, r) },
      extensions: { retry_after: sec },
      ...(throttled ? { logReason: 'throttle-exceeded' } : {}),
    } satisfies Rejection;
  }

  /** Throttling: the request holds its slot; wait for it (one timer, only for delayed requests). */
  private hold(ctx: RequestContext, set: LimitSet, checks: readonly RateCheck[], delay: number): Promise<StageOutcome> {
    const ms = Math.ceil(delay);
    ctx.throttleMs = ms;
    const keys: string[] = [];
    for (let i = 0; i < checks.length; i++) {
      if (!set.limits[i]!.delay) continue;
      const k = checks[i]![1];
      keys.push(k);
      this.queued.set(k, (this.queued.get(k) ?? 0) + 1);
    }
    return new Promise<StageOutcome>((resolve) => {
      setTimeout(() => {
        for (const k of keys) {
          const n = (this.queued.get(k) ?? 1) - 1;
          if (n <= 0) this.queued.delete(k); else this.queued.set(k, n);
        }
        resolve(undefined);
      }, ms);
    });
  }

  private storeFailed(ctx: RequestContext, set: LimitSet, checks: readonly RateCheck[], err: unknown): StageOutcome | Promise<StageOutcome> {
    storeErrorCounter().inc({ route: this.routeId });
    const now = Date.now();
    if (now - lastErrorLog >= ERROR_LOG_INTERVAL_MS) {
      // The message only: never a URL (may carry a password) or a key (may carry a client's header value).
      this.log.warn({ route: this.routeId, err: err instanceof Error ? err.message : String(err), failOpen: this.failOpen, ...(suppressedErrors > 0 ? { suppressed: suppressedErrors } : {}) },
        this.failOpen ? 'rate-limit store unavailable; using the local per-process limiter' : 'rate-limit store unavailable; refusing requests (failClosed)');
      lastErrorLog = now;
      suppressedErrors = 0;
    } else {
      suppressedErrors++;
    }
    if (this.failOpen) {
      fallbackStore ??= new LocalMemoryStore(FALLBACK_MAX_KEYS);
      return this.finish(ctx, set, checks, fallbackStore.rateLimitSync(checks));
    }
    this.emit(ctx, 'store-unavailable');
    return { status: 503, code: 'rate-limit-unavailable', detail: 'The rate limiter cannot decide right now; retry shortly', headers: { 'retry-after': '1' }, extensions: { retry_after: 1 } };
  }

  private addHeaders(ctx: RequestContext, h: HeaderList): void {
    const v = kHeaders.get(ctx);
    if (v === undefined) return;
    h.set('ratelimit-policy', v[0]);
    h.set('ratelimit', v[1]);
  }

  private emit(ctx: RequestContext, reason: string): void {
    const consumer = ctx.identity?.consumer;
    this.events.emit({
      type: 'rate-limit',
      reason,
      route: this.routeId,
      clientIp: ctx.clientIp,
      requestId: ctx.id,
      ...(consumer !== undefined ? { consumer } : {}),
      time: Date.now(),
    });
  }
}

function limitSet(limits: CompiledLimit[]): LimitSet {
  return { limits, policy: policyHeader(limits) };
}

export function compileRateLimit(cfg: RateLimitConfig, env: CompileEnv): RateLimiter | null {
  const routeId = env.routeId;
  const routeLimits = (cfg.limits ?? []).map((r, i) => compileLimit(r, `rl:${routeId}:${i}`, r.name ?? (i === 0 ? 'default' : `limit-${i}`), routeId, ['ip']));
  let planSets: Map<string, LimitSet> | undefined;
  let defaultSet = limitSet(routeLimits);
  const global = env.config.rateLimiting;
  if (cfg.plans === true) {
    const plans = global?.plans;
    if (plans === undefined) throw new Error('rateLimit.plans is on but rateLimiting.plans defines no plan');
    planSets = new Map();
    for (const [plan, p] of Object.entries(plans)) {
      // Plan limits are shared by every route that applies plans (a consumer's quota for the API), unless `by` has `route`.
      const limits = p.limits.map((r, i) => compileLimit(r, `rp:${plan}:${i}`, r.name ?? `${plan}-${i}`, routeId, ['consumer']));
      planSets.set(plan, limitSet([...routeLimits, ...limits]));
    }
    const def = global?.defaultPlan;
    if (def !== undefined) {
      const s = planSets.get(def);
      if (s === undefined) throw new Error(`rateLimiting.defaultPlan "${def}" is not a plan`);
      defaultSet = s;
    }
  }
  if (routeLimits.length === 0 && planSets === undefined) return null;
  return new RateLimiter(
    routeId, limitSet(routeLimits), planSets, global?.planMetadataKey ?? 'plan', defaultSet,
    env.identity.state, cfg.onStoreError !== 'failClosed', cfg.headers !== false,
    env.identity.logger.child({ component: 'rate-limit' }), env.identity.events,
  );
}

export const rateLimitStage: StageModule<'rateLimit', typeof RateLimitSchema, 'rateLimiting', typeof RateLimitGlobalSchema> = {
  name: 'rate-limit',
  order: 90,
  configKey: 'rateLimit',
  schema: RateLimitSchema,
  global: { key: 'rateLimiting', schema: RateLimitGlobalSchema },
  upgrades: 'run',
  docs: 'docs/rate-limiting.md',
  check: rateLimitIssues,
  compile: compileRateLimit,
};
