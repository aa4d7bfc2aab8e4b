// A bounded LRU of verified credentials (JWTs, attestation tokens, introspection results), keyed by a
// hash of the token so the cache never holds a usable credential. Entries never outlive the token's own
// expiry, and a cache generation lets a key-set rotation drop everything verified with retired keys.
// JavaScript Map iteration order is insertion order: re-inserting on hit makes the first key the LRU one.
import { hash } from 'node:crypto';

interface Entry<V> { value: V; expiresAtMs: number; epoch: number }

export class VerificationCache<V> {
  private readonly map = new Map<string, Entry<V>>();
  private epoch = 0;

  constructor(private readonly maxEntries: number) {}

  /** SHA-256 of the token, base64url: the cache key. */
  static keyOf(token: string): string {
    return hash('sha256', token, 'base64url');
  }

  get(key: string, nowMs: number): V | undefined {
    const e = this.map.get(key);
    if (e === undefined) return undefined;
    if (e.expiresAtMs <= nowMs || e.epoch !== this.epoch) { this.map.delete(key); return undefined; }
    // refresh recency
    this.map.delete(key);
    this.map.set(key, e);
    return e.value;
  }

  set(key: string, value: V, expiresAtMs: number): void {
    if (this.maxEntries <= 0) return;
    this.map.delete(key);
    this.map.set(key, { value, expiresAtMs, epoch: this.epoch });
    if (this.map.size > this.maxEntries) {
      const oldest = this.map.keys().next().value;
      if (oldest !== undefined) this.map.delete(oldest);
    }
  }

  /** Forget everything (a key was rotated away, a consumer revoked): O(1), entries die lazily. */
  invalidateAll(): void {
    this.epoch++;
    this.map.clear();
  }

  get size(): number { return this.map.size; }
}
