// The rate-limit math as pure functions of (stored state, limit, now). The memory store runs them
// directly; src/state/redis.ts mirrors them line for line in one Lua script. All times are epoch ms.
//
// Per-key state is three numbers (a, b, c):
//   fixed window    a = window index, b = count in it
//   sliding window  a = window index, b = count in it, c = count in the previous window
//                   (weighted two-window counter: estimate = prev·(1 − elapsed/W) + cur)
//   token bucket    a = TAT, the GCRA "theoretical arrival time" (one timestamp per key)
import type { RateCheck } from './types.js';

export const ALG_FIXED = 0;
export const ALG_SLIDING = 1;
export const ALG_GCRA = 2;
export type Algorithm = typeof ALG_FIXED | typeof ALG_SLIDING | typeof ALG_GCRA;

/** Slots of a Decision buffer. */
export const D_ALLOWED = 0, D_DELAY = 1, D_REMAINING = 2, D_RESET = 3, D_RETRY = 4, D_A = 5, D_B = 6, D_C = 7, D_TTL = 8;
export const DECISION_SIZE = 9;

/** float slack for GCRA sums of a fractional emission interval (e.g. 1000/3 ms) */
const EPS = 1e-6;

/**
 * Decides one check against the stored state (a, b, c; a < 0 = no state) and writes into `d`: whether it
 * is allowed, the throttle delay, remaining, ms until reset, ms until a retry can pass, and the state to
 * store if every check of the request passes (plus its TTL), at offset `o`. Never allocates.
 */
export function decide(c0: RateCheck, a: number, b: number, c: number, now: number, d: Float64Array, o = 0): void {
  const alg = c0[0], limit = c0[2], w = c0[3];
  if (alg === ALG_GCRA) {
    const t = w / limit;
    const burst = c0[4];
    const tat = a > now ? a : now;
    const newTat = tat + t;
    const wait = newTat - t * burst - now;
    d[o + D_RESET] = newTat - now;
    if (wait <= EPS || wait <= c0[5]) {
      d[o + D_ALLOWED] = 1;
      d[o + D_DELAY] = wait > EPS ? wait : 0;
      d[o + D_REMAINING] = Math.max(0, Math.floor((now + t * burst - newTat) / t + EPS));
      d[o + D_RETRY] = 0;
      d[o + D_A] = newTat; d[o + D_B] = 0; d[o + D_C] = 0;
      d[o + D_TTL] = newTat - now;
    } else {
      d[o + D_ALLOWED] = 0; d[o + D_DELAY] = 0; d[o + D_REMAINING] = 0;
      d[o + D_RETRY] = wait;
      d[o + D_RESET] = tat - now;
    }
    return;
  }
  const win = Math.floor(now / w);
  const start = win * w;
  let cur = 0, prev = 0;
  if (a === win) { cur = b; prev = c; } else if (a === win - 1) { prev = b; }
  d[o + D_RESET] = start + w - now;
  d[o + D_DELAY] = 0;
  if (alg === ALG_FIXED) {
    if (cur + 1 <= limit) {
      d[o + D_ALLOWED] = 1; d[o + D_REMAINING] = limit - cur - 1; d[o + D_RETRY] = 0;
      d[o + D_A] = win; d[o + D_B] = cur + 1; d[o + D_C] = 0; d[o + D_TTL] = start + w - now;
    } else {
      d[o + D_ALLOWED] = 0; d[o + D_REMAINING] = 0; d[o + D_RETRY] = start + w - now;
    }
    return;
  }
  // sliding window: the previous window's count is assumed spread evenly over it
  const f = (now - start) / w;
  const est = prev * (1 - f) + cur;
  if (est + 1 <= limit) {
    d[o + D_ALLOWED] = 1; d[o + D_REMAINING] = Math.floor(limit - est - 1); d[o + D_RETRY] = 0;
    d[o + D_A] = win; d[o + D_B] = cur + 1; d[o + D_C] = prev; d[o + D_TTL] = start + 2 * w - now;
    return;
  }
  d[o + D_ALLOWED] = 0; d[o + D_REMAINING] = 0;
  const room = limit - 1 - cur;
  if (room >= 0 && prev > 0) {
    // later in this window the previous window's weight has shrunk enough
    d[o + D_RETRY] = start + (1 - room / prev) * w - now;
  } else {
    // next window, where this window's count becomes the weighted "previous"
    const g = cur > 0 ? Math.max(0, 1 - (limit - 1) / cur) : 0;
    d[o + D_RETRY] = start + w + g * w - now;
  }
}

/** Whole-second value for Retry-After, retry_after and the RateLimit `t` parameter: at least 1 when waiting. */
export function seconds(ms: number): number {
  return ms <= 0 ? 0 : Math.max(1, Math.ceil(ms / 1000 - EPS));
}
