// The shared state store contract. Identity uses claimOnce (DPoP jti replay cache); the rate limiter
// (issue 5) adds its counter operations here. Implementations: memory (embedded; in cluster mode the
// primary owns the data), redis.
import type { Service } from '../gateway/services.js';

export interface StateStore extends Service {
  readonly kind: 'memory' | 'redis';
  /**
   * Atomically records `key` for `ttlMs`. Resolves true when the key was new (first use), false when it
   * was already there (a replay). Rejects when the store cannot answer (callers fail closed).
   */
  claimOnce(key: string, ttlMs: number): Promise<boolean>;
}
