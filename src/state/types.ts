// The shared state store contract. Identity uses claimOnce (DPoP jti replay cache); the rate limiter
// uses rateLimit (counters, src/state/rate-algorithms.ts). Implementations: memory (embedded; in
// cluster mode the primary owns the data), redis.
import type { Service } from '../services/services.js';

/**
 * One limit to check, as plain data (it crosses IPC and becomes Lua ARGV):
 * [algorithm (0 fixed window, 1 sliding window, 2 token bucket/GCRA), key, limit, windowMs, burst, maxDelayMs].
 * maxDelayMs > 0 (token bucket only) admits an over-rate request for a future slot up to that far ahead.
 */
export type RateCheck = readonly [alg: number, key: string, limit: number, windowMs: number, burst: number, maxDelayMs: number];

/**
 * [allowed (1|0), delayMs, then per check: remaining, resetMs, retryAfterMs]. The checks of one call are
 * atomic together: state is only updated when every check passes (a refused request consumes nothing).
 */
export type RateResult = number[];

export interface StateStore extends Service {
  readonly kind: 'memory' | 'redis';
  /**
   * Atomically records `key` for `ttlMs`. Resolves true when the key was new (first use), false when it
   * was already there (a replay). Rejects when the store cannot answer (callers fail closed).
   */
  claimOnce(key: string, ttlMs: number): Promise<boolean>;
  /** Checks and counts one request against several limits in one atomic step (one Redis round trip). */
  rateLimit(checks: readonly RateCheck[]): Promise<RateResult>;
}
