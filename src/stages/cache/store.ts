// The cache store contract, the memory store (an LRU bounded by bytes), and the per-gateway registry the
// admin purge call uses to find the stores of the running configuration.
import type { IncomingHttpHeaders } from 'node:http';
import type { Service, ServiceScope } from '../../services/services.js';
import { variantOf, type CachedResponse } from './entry.js';
import { untrackStore } from './cluster.js';

export type PurgeSpec = { readonly key: string } | { readonly prefix: string };

export interface CacheStore extends Service {
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
    sizes.set(slot, size);
    this.slots.set(key, slot);
    this.bytes += size;
  }

  private touch(key: string, slot: Slot): void {
    // Re-insert = most recently used. Map delete+set keeps the key's entry object; no allocation.
    this.slots.delete(key);
    this.slots.set(key, slot);
  }

  private delete(key: string, slot: Slot): void {
    if (this.slots.delete(key)) this.bytes -= sizes.get(slot) ?? 0;
  }

  private evict(): void {
    if (this.bytes <= this.maxBytes) return;
    for (const [k, s] of this.slots) {
      this.delete(k, s);
      if (this.bytes <= this.maxBytes) return;
    }
  }
}

/** Accounted size of each slot (key length included), without widening the entry class. */
const sizes = new WeakMap<Slot, number>();

// --- registry: which stores the routes of a configuration generation use (for the admin purge) ---

const registry = new WeakMap<ServiceScope, Set<CacheStore>>();

export function registerCacheStore(scope: ServiceScope, store: CacheStore): void {
  let s = registry.get(scope);
  if (s === undefined) registry.set(scope, (s = new Set()));
  s.add(store);
}

/** The cache stores a generation's routes use (empty when no route caches). */
export function cacheStoresOf(scope: ServiceScope): readonly CacheStore[] {
  const s = registry.get(scope);
  return s === undefined ? [] : [...s];
}

/** Purges in every store of the generation; resolves the total removed. */
export async function purgeAll(scope: ServiceScope, spec: PurgeSpec): Promise<number> {
  const counts = await Promise.all(cacheStoresOf(scope).map((s) => s.purge(spec)));
  return counts.reduce((a, b) => a + b, 0);
}
