// concurrency stage (order 125, after rate limiting and the cache): bulkheads. At most N requests in flight per
// consumer on the route, per route, and per upstream (top-level overload.upstreams, shared by every route
// to that upstream); the rest wait briefly in a bounded queue or get 503 concurrency-limit with
// Retry-After. See docs/concurrency-and-overload.md.
//
// Slots are taken in a fixed order — consumer, route, upstream — by every route, so two requests never
// wait on each other's slots (no deadlock), and a consumer at its own limit waits in its own queue without
// holding a route or upstream slot (it does not block other consumers).
//
// Per request: a few counter checks and one Set insert (to know in onDone that this request holds slots:
// onDone also runs for requests refused before this stage). A Promise only when the request has to wait.
// A slot is released exactly once, in onDone, whatever ended the exchange (response sent, refused by a
// later stage, upstream error, client gone).
import type { ServerResponse } from 'node:http';
import type { RequestContext } from '../../pipeline/context.js';
import type { CompileEnv, CompiledStage, Rejection, StageModule, StageOutcome } from '../../pipeline/types.js';
import type { SecurityEventBus } from '../../observability/security-events.js';
import { serviceKey } from '../../services/services.js';
import { KeyedGate, SharedGate, type Gate, type GateLimits, type GateWaiter } from './bulkhead.js';
import { ConcurrencySchema, ConcurrencyGlobalSchema, type BulkheadQueueConfig, type ConcurrencyConfig } from './schema.js';
import { concurrencyIssues } from './semantic.js';

export const DEFAULT_MAX_WAIT_MS = 1000;

type LevelName = 'consumer' | 'route' | 'upstream';
type Outcome = 'full' | 'queue-full' | 'queue-timeout';

const RETRY_AFTER = Object.freeze({ 'retry-after': '1' });
const DETAIL: Record<LevelName, string> = {
  consumer: 'too many of your requests are in flight on this route; retry shortly',
  route: 'too many requests are in flight on this route; retry shortly',
  upstream: 'the service behind this route is at capacity; retry shortly',
};

/** The client always sees 503 concurrency-limit; the access log and the event say which bulkhead and why. */
function rejection(level: LevelName, outcome: Outcome): Rejection {
  return Object.freeze({ status: 503, code: 'concurrency-limit', detail: DETAIL[level], headers: RETRY_AFTER, logReason: `concurrency-${level}-${outcome}` });
}

interface Level {
  readonly gate: Gate;
  readonly name: LevelName;
  readonly full: Rejection;
  readonly queueFull: Rejection;
  readonly timeout: Rejection;
}

function level(gate: Gate, name: LevelName): Level {
  return { gate, name, full: rejection(name, 'full'), queueFull: rejection(name, 'queue-full'), timeout: rejection(name, 'queue-timeout') };
}

function limits(maxInFlight: number, queue: BulkheadQueueConfig | undefined): GateLimits {
  return { maxInFlight, maxQueue: queue?.maxQueue ?? 0, maxWaitMs: queue?.maxWaitMs ?? DEFAULT_MAX_WAIT_MS };
}

/** Without an identity (or with the anonymous one) a request counts against its client IP. */
function isAnonymous(ctx: RequestContext): boolean {
  const id = ctx.identity;
  return id === undefined || id.kind === 'anonymous';
}

/**
 * Whose slot a request takes on a per-consumer gate: the consumer (or identity id) when authenticated,
 * else the client IP as the core derived it (never a header an untrusted peer could vary).
 */
function consumerKey(ctx: RequestContext, anon: boolean): string {
  return anon ? ctx.clientIp : ctx.identity!.consumer ?? ctx.identity!.id;
}

/** A request waiting for slots (only requests that have to wait get one). */
class Waiting implements GateWaiter {
  /** levels [0, held) are held */
  held: number;
  /** index of the level whose queue it is in, -1 when in none */
  queuedAt = -1;
  timer: NodeJS.Timeout | undefined = undefined;
  done = false;
  readonly promise: Promise<StageOutcome>;
  private resolve!: (o: StageOutcome) => void;

  constructor(readonly guard: Guard, readonly ctx: RequestContext, readonly key: string, readonly anon: boolean, held: number) {
    this.held = held;
    this.promise = new Promise<StageOutcome>((r) => { this.resolve = r; });
  }

  settle(o: StageOutcome): void {
    this.done = true;
    if (this.timer !== undefined) { clearTimeout(this.timer); this.timer = undefined; }
    this.resolve(o);
  }

  granted(): void {
    this.held = this.queuedAt + 1;
    this.queuedAt = -1;
    if (this.timer !== undefined) { clearTimeout(this.timer); this.timer = undefined; }
    // Continue on a microtask: a release inside a release (this one failing at a later level) would
    // otherwise recurse once per waiter.
    queueMicrotask(this.advance);
  }

  abandoned(): void {
    const at = this.queuedAt;
    this.queuedAt = -1;
    this.guard.fail(this, at, 'full');
  }

  readonly advance = (): void => { if (!this.done) this.guard.advance(this); };

  readonly expire = (): void => {
    this.timer = undefined;
    if (this.done || this.queuedAt < 0) return;
    const at = this.queuedAt;
    this.guard.levels[at]!.gate.dequeue(this.key, this.anon, this);
    this.queuedAt = -1;
    this.guard.fail(this, at, 'queue-timeout');
  };
}

class Guard {
  /** requests holding all their slots (released in onDone) */
  private readonly holders = new Set<RequestContext>();
  /** requests waiting for a slot */
  private readonly waiting = new Map<RequestContext, Waiting>();

  constructor(readonly levels: readonly Level[], private readonly events: SecurityEventBus) {}

  readonly onRequest = (ctx: RequestContext): StageOutcome | Promise<StageOutcome> => {
    // WebSocket upgrades (no response object, no onDone) are long-lived tunnels, not requests: not counted.
    if ((ctx.res as ServerResponse | undefined) === undefined) return undefined;
    const anon = isAnonymous(ctx);
    const key = consumerKey(ctx, anon);
    const lv = this.levels;
    for (let i = 0; i < lv.length; i++) {
      if (!lv[i]!.gate.tryAcquire(key, anon)) return this.wait(ctx, key, anon, i);
    }
    this.holders.add(ctx);
    return undefined;
  };

  readonly onDone = (ctx: RequestContext): void => {
    if (this.holders.delete(ctx)) {
      const anon = isAnonymous(ctx);
      this.releaseBelow(this.levels.length, consumerKey(ctx, anon), anon);
      return;
    }
    const w = this.waiting.get(ctx);
    if (w === undefined) return;
    // Client gone (or the server gave up) while waiting: leave the queue, give back what it holds.
    this.waiting.delete(ctx);
    if (w.queuedAt >= 0) this.levels[w.queuedAt]!.gate.dequeue(w.key, w.anon, w);
    this.releaseBelow(w.held, w.key, w.anon);
    // Its response is closed: the pipeline does not continue (runStages checks res.destroyed).
    w.settle(undefined);
  };

  /** Level `at` is full (levels below it are held): queue there, or refuse now. */
  private wait(ctx: RequestContext, key: string, anon: boolean, at: number): StageOutcome | Promise<StageOutcome> {
    const l = this.levels[at]!;
    if (l.gate.limits.maxQueue === 0) return this.refuse(ctx, key, anon, at, 'full');
    const w = new Waiting(this, ctx, key, anon, at);
    if (!l.gate.enqueue(key, anon, w)) return this.refuse(ctx, key, anon, at, 'queue-full');
    this.queue(w, at);
    this.waiting.set(ctx, w);
    return w.promise;
  }

  private queue(w: Waiting, at: number): void {
    w.queuedAt = at;
    w.timer = setTimeout(w.expire, this.levels[at]!.gate.limits.maxWaitMs);
    w.timer.unref();
  }

  /** A waiting request got the slot it waited for: take the next levels, waiting again if need be. */
  advance(w: Waiting): void {
    const lv = this.levels;
    for (let i = w.held; i < lv.length; i++) {
      const l = lv[i]!;
      if (l.gate.tryAcquire(w.key, w.anon)) { w.held = i + 1; continue; }
      if (l.gate.limits.maxQueue === 0) return this.fail(w, i, 'full');
      if (!l.gate.enqueue(w.key, w.anon, w)) return this.fail(w, i, 'queue-full');
      this.queue(w, i);
      return;
    }
    this.waiting.delete(w.ctx);
    this.holders.add(w.ctx);
    w.settle(undefined);
  }

  /** Refuse a waiting request at level `at` (it holds levels below `at`). */
  fail(w: Waiting, at: number, outcome: Outcome): void {
    if (w.done) return;
    this.waiting.delete(w.ctx);
    this.releaseBelow(w.held, w.key, w.anon);
    const l = this.levels[at]!;
    const r = outcome === 'full' ? l.full : outcome === 'queue-full' ? l.queueFull : l.timeout;
    this.emit(w.ctx, l.name, outcome);
    w.settle(r);
  }

  private refuse(ctx: RequestContext, key: string, anon: boolean, at: number, outcome: 'full' | 'queue-full'): Rejection {
    this.releaseBelow(at, key, anon);
    const l = this.levels[at]!;
    this.emit(ctx, l.name, outcome);
    return outcome === 'full' ? l.full : l.queueFull;
  }

  /** Gives back levels [0, n), last taken first. */
  private releaseBelow(n: number, key: string, anon: boolean): void {
    for (let i = n - 1; i >= 0; i--) this.levels[i]!.gate.release(key, anon);
  }

  private emit(ctx: RequestContext, name: LevelName, outcome: Outcome): void {
    const consumer = ctx.identity?.consumer;
    this.events.emit({
      type: 'overload',
      reason: `${name}-${outcome}`,
      route: ctx.routeId,
      clientIp: ctx.clientIp,
      requestId: ctx.id,
      ...(consumer !== undefined ? { consumer } : {}),
      time: Date.now(),
    });
  }
}

/** The gates a route uses, in acquisition order; created or reused through the service scope. */
function routeGates(config: ConcurrencyConfig, env: CompileEnv): Level[] {
  const services = env.identity.services;
  const out: Level[] = [];
  const pc = config.perConsumer;
  if (pc !== undefined) {
    const lim = limits(pc.maxInFlight, config.queue);
    out.push(level(services.use(serviceKey('bulkhead', 'consumer', env.routeId, lim), () => new KeyedGate(`route:${env.routeId}:consumer`, lim)), 'consumer'));
  }
  if (config.maxInFlight !== undefined) {
    const lim = limits(config.maxInFlight, config.queue);
    out.push(level(services.use(serviceKey('bulkhead', 'route', env.routeId, lim), () => new SharedGate(`route:${env.routeId}`, lim)), 'route'));
  }
  const up = env.route.upstream;
  const ub = up !== undefined ? env.config.overload?.upstreams?.[up] : undefined;
  if (up !== undefined && ub !== undefined) {
    const lim = limits(ub.maxInFlight, ub.queue);
    out.push(level(services.use(serviceKey('bulkhead', 'upstream', up, lim), () => new SharedGate(`upstream:${up}`, lim)), 'upstream'));
  }
  return out;
}

export const concurrencyStage: StageModule<'concurrency', typeof ConcurrencySchema, 'overload', typeof ConcurrencyGlobalSchema> = {
  name: 'concurrency',
  // After the cache: a hit or a coalesced follower never goes upstream, so it must not take (or wait for) a slot.
  order: 125,
  configKey: 'concurrency',
  schema: ConcurrencySchema,
  global: { key: 'overload', schema: ConcurrencyGlobalSchema },
  // compiled on every route: a route without a block still passes its upstream's bulkhead (overload.upstreams)
  always: true,
  // a tunnel holds no request slot (it would pin one for its whole life)
  upgrades: 'skip',
  docs: 'docs/concurrency-and-overload.md',
  check: concurrencyIssues,
  compile(config, env): CompiledStage | null {
    const levels = routeGates(config, env);
    if (levels.length === 0) return null;
    const g = new Guard(levels, env.identity.events);
    return { onRequest: g.onRequest, onDone: g.onDone };
  },
};
