// The embedded state store. MemoryState is the synchronous core (also what the cluster primary owns);
// LocalMemoryStore wraps it as a StateStore for a single process.
//
// Bounds: expired entries are swept incrementally — every operation advances a cursor over the map by a
// few entries and drops the expired ones it passes, so a full pass costs O(1) per operation and no timer
// or pause is needed. The map is capped (default 1,000,000 entries, roughly 200 MB with DPoP keys): at the
// cap the oldest-inserted entry is evicted. For the replay cache that means a flood of unique keys can
// push out a still-valid marker (a replay of that old proof would then pass) — the price of never running
// out of memory; `stats().evictedLive` counts it.
import type { RateCheck, RateResult, StateStore } from './types.js';
import { decide, DECISION_SIZE, D_ALLOWED, D_DELAY, D_REMAINING, D_RESET, D_RETRY, D_A, D_B, D_C, D_TTL } from './rate-algorithms.js';

export const DEFAULT_MAX_ENTRIES = 1_000_000;
/** entries the sweep cursor advances per operation: > 1 so the sweep outpaces insertions (≤ 1 per op) */
const SWEEP_STEP = 4;

/** One rate-limit key's state (see rate-algorithms.ts for what a, b, c mean per algorithm); mutated in place. */
interface RateEntry { a: number; b: number; c: number; exp: number }

export class MemoryState {
  /** key → expiry (epoch ms). Insertion order ≈ age: a re-claimed key is deleted and re-inserted. */
  private readonly expiry = new Map<string, number>();
  private cursor: IterableIterator<[string, number]> | undefined;
  private evictedLive = 0;
  private evictedLiveRates = 0;
  /** rate-limit counters, swept and capped like `expiry` (insertion order = first use) */
  private readonly rates = new Map<string, RateEntry>();
  private rateCursor: IterableIterator<[string, RateEntry]> | undefined;
  /** decisions of the checks of one call; reused (the store is single-threaded and decide() is synchronous) */
  private decisions = new Float64Array(DECISION_SIZE * 4);

  constructor(readonly maxEntries = DEFAULT_MAX_ENTRIES) {
    if (!(maxEntries >= 1)) throw new Error('maxEntries must be at least 1');
  }

  claimOnce(key: string, ttlMs: number, nowMs: number): boolean {
    this.sweep(nowMs);
    const until = this.expiry.get(key);
    if (until !== undefined) {
      if (until > nowMs) return false;
      this.expiry.delete(key);
    }
    this.insert(key, nowMs + ttlMs, nowMs);
    return true;
  }

  /** Checks every limit, then counts the request in all of them only if all pass. See RateResult. */
  rateLimit(checks: readonly RateCheck[], nowMs: number): RateResult {
    this.sweepRates(nowMs);
    const n = checks.length;
    if (this.decisions.length < n * DECISION_SIZE) this.decisions = new Float64Array(n * DECISION_SIZE);
    const d = this.decisions;
    const out: RateResult = new Array<number>(2 + 3 * n);
    let allowed = 1, delay = 0;
    for (let i = 0; i < n; i++) {
      const check = checks[i]!;
      const e = this.rates.get(check[1]);
      const live = e !== undefined && e.exp > nowMs;
      // Every use moves the key to the end: eviction at the cap takes the least recently used key, never
      // a busy one (a route-wide limit, a refused client) that a flood of fresh keys would otherwise reset.
      if (live) { this.rates.delete(check[1]); this.rates.set(check[1], e); }
      const o = i * DECISION_SIZE;
      decide(check, live ? e.a : -1, live ? e.b : 0, live ? e.c : 0, nowMs, d, o);
      if (d[o + D_ALLOWED] === 0) allowed = 0;
      else if (d[o + D_DELAY]! > delay) delay = d[o + D_DELAY]!;
      out[2 + 3 * i] = d[o + D_REMAINING]!;
      out[3 + 3 * i] = d[o + D_RESET]!;
      out[4 + 3 * i] = d[o + D_RETRY]!;
    }
    out[0] = allowed;
    out[1] = allowed === 1 ? delay : 0;
    // A refused request consumed nothing: the limits it passed keep the unit it would have used.
    if (allowed === 0) for (let i = 0; i < n; i++) if (d[i * DECISION_SIZE + D_ALLOWED] === 1) out[2 + 3 * i]! += 1;
    if (allowed === 1) {
      for (let i = 0; i < n; i++) {
        const o = i * DECISION_SIZE;
        const key = checks[i]![1];
        const exp = nowMs + Math.max(1, d[o + D_TTL]!);
        const e = this.rates.get(key);
        if (e !== undefined) {
          e.a = d[o + D_A]!; e.b = d[o + D_B]!; e.c = d[o + D_C]!; e.exp = exp;
          continue;
        }
        if (this.rates.size >= this.maxEntries) {
          const oldest = this.rates.entries().next();
          if (oldest.done !== true) {
            if (oldest.value[1].exp > nowMs) this.evictedLiveRates++;
            this.rates.delete(oldest.value[0]);
          }
        }
        this.rates.set(key, { a: d[o + D_A]!, b: d[o + D_B]!, c: d[o + D_C]!, exp });
      }
    }
    return out;
  }

  /** evictedLive: replay markers dropped at the cap while still valid; evictedLiveRates: the same for rate-limit keys */
  stats(): { entries: number; evictedLive: number; evictedLiveRates: number } {
    return { entries: this.expiry.size, evictedLive: this.evictedLive, evictedLiveRates: this.evictedLiveRates };
  }

  /** number of live-or-unswept rate-limit keys */
  rateKeys(): number {
    return this.rates.size;
  }

  clear(): void {
    this.expiry.clear();
    this.cursor = undefined;
    this.rates.clear();
    this.rateCursor = undefined;
  }

  private sweepRates(nowMs: number): void {
    const it = (this.rateCursor ??= this.rates.entries());
    for (let i = 0; i < SWEEP_STEP; i++) {
      const n = it.next();
      if (n.done === true) { this.rateCursor = undefined; return; }
      if (n.value[1].exp <= nowMs) this.rates.delete(n.value[0]);
    }
  }

  private insert(key: string, until: number, nowMs: number): void {
    if (this.expiry.size >= this.maxEntries) {
      const oldest = this.expiry.entries().next();
      if (!oldest.done) {
        if (oldest.value[1] > nowMs) this.evictedLive++;
        this.expiry.delete(oldest.value[0]);
      }
    }
    this.expiry.set(key, until);
  }

  /** Map iterators are live: deleting behind the cursor is safe, and entries added later are visited too. */
  private sweep(nowMs: number): void {
    const it = (this.cursor ??= this.expiry.entries());
    for (let i = 0; i < SWEEP_STEP; i++) {
      const n = it.next();
      if (n.done === true) { this.cursor = undefined; return; }
      if (n.value[1] <= nowMs) this.expiry.delete(n.value[0]);
    }
  }
}

/** The memory store of a single process (tests, embedding, `portcullis` without cluster workers). */
export class LocalMemoryStore implements StateStore {
  readonly kind = 'memory' as const;
  readonly state: MemoryState;

  constructor(maxEntries = DEFAULT_MAX_ENTRIES) { this.state = new MemoryState(maxEntries); }

  async ready(): Promise<void> {}
  async close(): Promise<void> { this.state.clear(); }

  claimOnce(key: string, ttlMs: number): Promise<boolean> {
    return Promise.resolve(this.state.claimOnce(key, ttlMs, Date.now()));
  }

  rateLimit(checks: readonly RateCheck[]): Promise<RateResult> {
    return Promise.resolve(this.state.rateLimit(checks, Date.now()));
  }

  /** The synchronous form the rate-limit stage uses in a single process (no Promise on the hot path). */
  rateLimitSync(checks: readonly RateCheck[], nowMs = Date.now()): RateResult {
    return this.state.rateLimit(checks, nowMs);
  }
}
