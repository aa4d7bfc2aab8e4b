// createUpstream: compiles one `upstreams.<name>` config entry into pools, a balancer, health
// tracking, an optional circuit breaker and a retry budget. pick/begin/end run per request and
// allocate nothing.
import { Pool } from 'undici';
import type { UpstreamConfig } from '../config/schema.js';
import type {
  AttemptOutcome, ManagedUpstream, RetryPolicy, UpstreamEvent, UpstreamSnapshot, UpstreamTarget, UpstreamTimeouts,
} from './types.js';
import { createBalancer } from './balancers.js';
import { ActiveHealthChecker, compileActive } from './health-active.js';
import { DEFAULT_FAIL_ON_STATUS, PASSIVE_DEFAULTS, isEjected, recordOutcome, type PassiveSettings } from './health-passive.js';
import { BREAKER_DEFAULTS, CircuitBreaker, type BreakerTransition } from './circuit-breaker.js';
import { RetryBudget } from './retry-budget.js';
import { compileUpstreamTls } from './tls.js';

export interface CreateUpstreamOptions {
  /** Monotonic milliseconds; injected by tests. Default performance.now(). */
  now?: () => number;
  onEvent?: (e: UpstreamEvent) => void;
  /** directory relative file names in `tls` (ca, cert, key) resolve against; default the working directory */
  baseDir?: string;
}

/** 0 disables a timeout (undici semantics). */
export const TIMEOUT_DEFAULTS: Readonly<UpstreamTimeouts> = { connectMs: 5_000, firstByteMs: 30_000, totalMs: 60_000 };
/** min(a, b) where 0 means "no limit". */
const capped = (a: number, b: number): number => (a === 0 ? b : b === 0 ? a : Math.min(a, b));

export const POOL_DEFAULTS = { connections: 128, keepAliveTimeoutMs: 60_000 } as const;
/**
 * Retry on 502/503 only: they mean "this target couldn't take it", so another target may.
 * 504 means the upstream was slow; retrying it multiplies load on an already slow service.
 */
export const RETRY_DEFAULTS = { attempts: 1, retryOnStatus: [502, 503], budgetRatio: 0.2, minRetriesPerSecond: 3 } as const;

/** Internal target: the public contract plus per-target health state. */
class Target implements UpstreamTarget {
  inflight = 0;
  healthy = true;
  // passive health (PassiveState)
  failures = 0;
  ejectedUntil = -Infinity;
  probation = false;

  constructor(
    readonly origin: string,
    readonly host: string,
    readonly dispatcher: Pool,
    readonly weight: number,
    /** identifies the owning upstream so foreign targets passed to end() are ignored */
    readonly owner: object,
  ) {}
}

export function createUpstream(name: string, cfg: UpstreamConfig, opts: CreateUpstreamOptions = {}): ManagedUpstream {
  const now = opts.now ?? (() => performance.now());
  const onEvent = opts.onEvent;
  const emit = (e: UpstreamEvent): void => {
    if (!onEvent) return;
    try { onEvent(e); } catch { /* a failing logger must not break request handling */ }
  };

  const timeouts: UpstreamTimeouts = {
    connectMs: cfg.timeouts?.connectMs ?? TIMEOUT_DEFAULTS.connectMs,
    firstByteMs: cfg.timeouts?.firstByteMs ?? TIMEOUT_DEFAULTS.firstByteMs,
    totalMs: cfg.timeouts?.totalMs ?? TIMEOUT_DEFAULTS.totalMs,
  };

  // https targets are verified by default, with or without a `tls` block. Throws UpstreamTlsConfigError.
  const tls = cfg.targets.some((t) => /^https:/i.test(t.url))
    ? compileUpstreamTls(name, cfg.tls, { onEvent: emit, baseDir: opts.baseDir })
    : undefined;

  const owner = {};
  const targets: Target[] = cfg.targets.map((t) => {
    const u = new URL(t.url);
    const pool = new Pool(u.origin, {
      connections: cfg.pool?.connections ?? POOL_DEFAULTS.connections,
      pipelining: 1,
      keepAliveTimeout: cfg.pool?.keepAliveTimeoutMs ?? POOL_DEFAULTS.keepAliveTimeoutMs,
      connect: tls && u.protocol === 'https:' ? tls.connector(u.origin, timeouts.connectMs) : { timeout: timeouts.connectMs },
      // Head and idle-body timeouts are capped at the total: a silent upstream is cut by undici, and the
      // proxy cuts a trickling one at its next chunk once totalMs has passed (no per-request timer).
      // Equal values also let undici re-arm one timer per socket instead of allocating one per phase.
      headersTimeout: capped(timeouts.firstByteMs, timeouts.totalMs),
      bodyTimeout: capped(timeouts.firstByteMs, timeouts.totalMs),
    });
    return new Target(u.origin, u.host, pool, t.weight ?? 1, owner);
  });

  const balancerKind = cfg.balancer ?? 'round-robin';
  const balancer = createBalancer(balancerKind, targets);
  const hashOn: ManagedUpstream['hashOn'] = balancerKind !== 'consistent-hash'
    ? undefined
    // Consistent hashing without a key would degrade to round-robin; stick by client IP instead.
    : !cfg.hashOn || 'clientIp' in cfg.hashOn ? { kind: 'clientIp' }
    // Node lower-cases incoming header names.
    : 'header' in cfg.hashOn ? { kind: 'header', name: cfg.hashOn.header.toLowerCase() }
    : { kind: 'cookie', name: cfg.hashOn.cookie };

  // Passive health is always on (Envoy-like outlier detection); config only tunes it.
  const passiveCfg = cfg.healthCheck?.passive;
  const passive: PassiveSettings = {
    consecutiveFailures: passiveCfg?.consecutiveFailures ?? PASSIVE_DEFAULTS.consecutiveFailures,
    cooldownMs: passiveCfg?.cooldownMs ?? PASSIVE_DEFAULTS.cooldownMs,
  };
  // Also what the breaker counts as a failure, so both agree on "the upstream is failing".
  const failStatus = new Set(passiveCfg?.failOnStatus ?? DEFAULT_FAIL_ON_STATUS);
  const isFailure = (o: AttemptOutcome): boolean => o.kind === 'error' || (o.kind === 'response' && failStatus.has(o.status));

  const breaker = cfg.circuitBreaker
    ? new CircuitBreaker({
      failureRatio: cfg.circuitBreaker.failureRatio ?? BREAKER_DEFAULTS.failureRatio,
      minRequests: cfg.circuitBreaker.minRequests ?? BREAKER_DEFAULTS.minRequests,
      windowMs: cfg.circuitBreaker.windowMs ?? BREAKER_DEFAULTS.windowMs,
      openMs: cfg.circuitBreaker.openMs ?? BREAKER_DEFAULTS.openMs,
      halfOpenRequests: cfg.circuitBreaker.halfOpenRequests ?? BREAKER_DEFAULTS.halfOpenRequests,
    }, (t: BreakerTransition) => {
      if (t.to === 'open') {
        emit({ type: 'breaker-opened', upstream: name, requests: t.requests, failures: t.failures, openMs: cfg.circuitBreaker?.openMs ?? BREAKER_DEFAULTS.openMs });
      } else if (t.to === 'half-open') emit({ type: 'breaker-half-open', upstream: name });
      else emit({ type: 'breaker-closed', upstream: name });
    })
    : undefined;

  const budget = new RetryBudget(
    cfg.retries?.budgetRatio ?? RETRY_DEFAULTS.budgetRatio,
    cfg.retries?.minRetriesPerSecond ?? RETRY_DEFAULTS.minRetriesPerSecond,
  );
  const retry: RetryPolicy = {
    attempts: cfg.retries?.attempts ?? RETRY_DEFAULTS.attempts,
    retryOnStatus: new Set<number>(cfg.retries?.retryOnStatus ?? RETRY_DEFAULTS.retryOnStatus),
    tryAcquireRetry: () => budget.tryAcquire(now()),
  };

  const active = cfg.healthCheck?.active
    ? new ActiveHealthChecker(targets, compileActive(cfg.healthCheck.active), (i, healthy, reason) => {
      const t = targets[i]!;
      t.healthy = healthy;
      emit(healthy
        ? { type: 'target-healthy', upstream: name, target: t.origin }
        : { type: 'target-unhealthy', upstream: name, target: t.origin, reason });
    }, (origin, ms) => (tls && origin.startsWith('https:') ? tls.connector(origin, ms) : undefined))
    : undefined;

  // Per-pick inputs read by the eligibility predicate, which is allocated once.
  let pickNow = 0;
  let pickExclude: readonly UpstreamTarget[] | undefined;
  const eligible = (i: number): boolean => {
    const t = targets[i]!;
    return t.healthy && !isEjected(t, pickNow) && (pickExclude === undefined || !pickExclude.includes(t));
  };

  const own = (t: UpstreamTarget): t is Target => t instanceof Target && t.owner === owner;

  let stopping: Promise<void> | undefined;
  const stopTimers = (): Promise<void> => (stopping ??= active ? active.stop() : Promise.resolve());
  let closing: Promise<void> | undefined;
  let destroying: Promise<void> | undefined;

  return {
    name,
    hashOn,
    retry,
    timeouts,
    targets,

    pick(hashKey, exclude) {
      const n = now();
      if (breaker && !breaker.canPass(n)) return null;
      pickNow = n;
      pickExclude = exclude !== undefined && exclude.length > 0 ? exclude : undefined;
      let i = balancer.pick(hashKey, eligible);
      // Retries prefer untried targets, but a tried one beats failing the request outright.
      if (i < 0 && pickExclude !== undefined) {
        pickExclude = undefined;
        i = balancer.pick(hashKey, eligible);
      }
      pickExclude = undefined;
      return i < 0 ? null : targets[i]!;
    },

    begin(target) {
      if (!own(target)) return;
      target.inflight++;
      budget.noteAttempt(now());
      breaker?.onBegin();
    },

    end(target, outcome) {
      if (!own(target)) return;
      if (target.inflight > 0) target.inflight--;
      if (outcome.kind === 'cancelled') {
        breaker?.onCancel();
        return;
      }
      const n = now();
      const failed = isFailure(outcome);
      breaker?.onEnd(failed, n);
      const tr = recordOutcome(target, passive, failed, n);
      if (tr === 'ejected') {
        emit({ type: 'target-ejected', upstream: name, target: target.origin, failures: target.failures, cooldownMs: passive.cooldownMs });
      } else if (tr === 'recovered') {
        emit({ type: 'target-recovered', upstream: name, target: target.origin });
      }
    },

    isReady() {
      if (!active) return true;
      for (const t of targets) if (t.healthy && t.weight > 0) return true;
      return false;
    },

    start() {
      active?.start();
    },

    close() {
      // Pool.close() lets in-flight requests finish; destroy() may still cut that short.
      closing ??= stopTimers().then(() => Promise.all(targets.map((t) => t.dispatcher.close().catch(() => {})))).then(() => {});
      return closing;
    },

    destroy() {
      destroying ??= stopTimers().then(() => Promise.all(targets.map((t) => t.dispatcher.destroy().catch(() => {})))).then(() => {});
      return destroying;
    },

    snapshot(): UpstreamSnapshot {
      const n = now();
      return {
        name,
        breaker: breaker ? breaker.state : 'disabled',
        targets: targets.map((t) => ({
          origin: t.origin,
          weight: t.weight,
          healthy: t.healthy,
          ejected: isEjected(t, n),
          inflight: t.inflight,
          consecutiveFailures: t.failures,
        })),
      };
    },
  };
}
