// Retry budget (Finagle/Linkerd style): retries may add at most `ratio` of the original requests
// seen in the last 10 s, plus a floor of `minPerSecond` retries per second so low-traffic
// upstreams can still retry. This bounds retry amplification when an upstream is failing.
import { RollingCounter } from './rolling-window.js';

export const RETRY_BUDGET_WINDOW_MS = 10_000;

export class RetryBudget {
  private readonly requests: RollingCounter;
  private readonly retries: RollingCounter;
  private readonly floor: number;
  /**
   * Retries acquired but not yet begun. begin() doesn't say whether an attempt is a retry; the
   * proxy acquires a retry right before beginning it, so the next attempt(s) after an acquisition
   * are the retries. A retry that never begins (no target) makes one first attempt uncounted,
   * which errs on the side of fewer retries.
   */
  private pending = 0;

  constructor(
    private readonly ratio: number,
    minPerSecond: number,
    windowMs = RETRY_BUDGET_WINDOW_MS,
  ) {
    this.requests = new RollingCounter(windowMs);
    this.retries = new RollingCounter(windowMs);
    this.floor = minPerSecond * (windowMs / 1000);
  }

  /** Every attempt (first tries and retries) — called from Upstream.begin(). */
  noteAttempt(now: number): void {
    if (this.pending > 0) this.pending--;
    else this.requests.add(now);
  }

  /** Take one retry: allowed while, counting this one, retries <= ratio * requests + floor over the window. */
  tryAcquire(now: number): boolean {
    if (this.retries.sum(now) + 1 > this.ratio * this.requests.sum(now) + this.floor) return false;
    this.retries.add(now);
    this.pending++;
    return true;
  }
}
