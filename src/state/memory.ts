// The embedded state store. MemoryState is the synchronous core (also what the cluster primary owns);
// LocalMemoryStore wraps it as a StateStore for a single process.
//
// Bounds: expired entries are swept incrementally — every operation advances a cursor over the map by a
// few entries and drops the expired ones it passes, so a full pass costs O(1) per operation and no timer
// or pause is needed. The map is capped (default 1,000,000 entries, roughly 200 MB with DPoP keys): at the
// cap the oldest-inserted entry is evicted. For the replay cache that means a flood of unique keys can
// push out a still-valid marker (a replay of that old proof would then pass) — the price of never running
// out of memory; `stats().evictedLive` counts it.
import type { StateStore } from './types.js';

export const DEFAULT_MAX_ENTRIES = 1_000_000;
/** entries the sweep cursor advances per operation: > 1 so the sweep outpaces insertions (≤ 1 per op) */
const SWEEP_STEP = 4;

export class MemoryState {
  /** key → expiry (epoch ms). Insertion order ≈ age: a re-claimed key is deleted and re-inserted. */
  private readonly expiry = new Map<string, number>();
  private cursor: IterableIterator<[string, number]> | undefined;
  private evictedLive = 0;

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

  stats(): { entries: number; evictedLive: number } {
    return { entries: this.expiry.size, evictedLive: this.evictedLive };
  }

  clear(): void {
    this.expiry.clear();
    this.cursor = undefined;
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
}
