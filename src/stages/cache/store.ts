// The cache store contract and the memory store (an LRU bounded by bytes). The admin purge finds a
// generation's stores through src/services/cache-purge.ts (the stage registers them there).
import type { IncomingHttpHeaders } from 'node:http';
import type { Service } from '../../services/services.js';
import type { PurgeSpec, PurgeTarget } from '../../services/cache-purge.js';
import { variantOf, type CachedResponse } from './entry.js';
import { untrackStore } from './cluster.js';

export type { PurgeSpec } from '../../services/cache-purge.js';

export interface CacheStore extends Service, PurgeTarget {
  readonly kind: 'memory' | 'redis';
  /**
   * The fresh response stored under `primary` for this request's Vary variant, if any. The memory store
   * answers synchronously; Redis returns a promise (and resolves undefined when Redis fails). Headers in
   * `secret` never leave the process (no stored response varies on them).
   */
  lookup(primary: string, headers: IncomingHttpHeaders, now: number, secret: ReadonlySet<string>): CachedResponse | undefined | Promise<CachedResponse | undefined>;
  /** Stores `entry` for the variant `variant` of `primary` under the Vary list `vary` (comma-joined names, '' = none). Never throws. */
  store(primary: string, vary: string, variant: string, entry: CachedResponse): void;
  /** Removes the entries with this exact primary key (all variants), or whose key starts with the prefix. Resolves the number removed. */
  purge(spec: PurgeSpec): Promise<number>;
}

/** Memory store slot: a response, or the Vary list of a primary key whose variants live at `primary \0 variant`. */
class VaryMark {
  constructor(readonly vary: string) {}
  get size(): number { return 64 + this.vary.length; }
}
type Slot = CachedResponse | VaryMark;

/**
 * Per-process LRU bounded by bytes: a Map keeps insertion order, a hit re-inserts its key at the end, and
 * eviction drops from the front until the total fits. Expired entries are dropped when looked up or when
 * they reach the front.
 */
export class MemoryCacheStore implements CacheStore {
  readonly kind = 'memory' as const;
  private readonly slots = new Map<string, Slot>();
  /** Accounted size of each slot (key length included), without widening the entry class. */
  private readonly sizes = new WeakMap<Slot, number>();
  private bytes = 0;

  constructor(readonly maxBytes: number) {}

  get size(): number { return this.bytes; }
  get count(): number { return this.slots.size; }

  async ready(): Promise<void> { /* nothing to connect */ }
  async close(): Promise<void> { untrackStore(this); this.slots.clear(); this.bytes = 0; }

  lookup(primary: string, headers: IncomingHttpHeaders, now: number): CachedResponse | undefined {
    let key = primary;
    let slot = this.slots.get(key);
    if (slot instanceof VaryMark) {
      this.touch(key, slot);
      key = `${primary}\0${variantOf(slot.vary, headers)}`;
      slot = this.slots.get(key);
    }
    if (slot === undefined) return undefined;
    const e = slot as CachedResponse;
    if (e.expiresAt <= now) { this.delete(key, e); return undefined; }
    this.touch(key, e);
    return e;
  }

  store(primary: string, vary: string, variant: string, entry: CachedResponse): void {
    const size = entry.size + primary.length + variant.length;
    if (size > this.maxBytes) return;
    if (vary === '') {
      this.set(primary, entry, size);
    } else {
      const cur = this.slots.get(primary);
      if (!(cur instanceof VaryMark) || cur.vary !== vary) this.set(primary, new VaryMark(vary), 64 + vary.length + primary.length);
      this.set(`${primary}\0${variant}`, entry, size);
    }
    this.evict();
  }

  async purge(spec: PurgeSpec): Promise<number> {
    let n = 0;
    if ('key' in spec) {
      const variants = `${spec.key}\0`;
      for (const [k, s] of this.slots) {
        if (k === spec.key || k.startsWith(variants)) { this.delete(k, s); if (!(s instanceof VaryMark)) n++; }
      }
    } else {
      for (const [k, s] of this.slots) {
        if (k.startsWith(spec.prefix)) { this.delete(k, s); if (!(s instanceof VaryMark)) n++; }
      }
    }
    return n;
  }

  private set(key: string, slot: Slot, size: number): void {
    const old = this.slots.get(key);
    if (old !== undefined) this.delete(key, old);
    this.sizes.set(slot, size);
    this.slots.set(key, slot);
    this.bytes += size;
  }

  private touch(key: string, slot: Slot): void {
    // Re-insert = most recently used. Map delete+set keeps the key's entry object; no allocation.
    this.slots.delete(key);
    this.slots.set(key, slot);
  }

  private delete(key: string, slot: Slot): void {
    if (this.slots.delete(key)) this.bytes -= this.sizes.get(slot) ?? 0;
  }

  private evict(): void {
    if (this.bytes <= this.maxBytes) return;
    for (const [k, s] of this.slots) {
      this.delete(k, s);
      if (this.bytes <= this.maxBytes) return;
    }
  }
}

