// Per-upstream circuit breaker: closed → (failure ratio over a rolling window) → open →
// (openMs elapsed, checked lazily on the next pick) → half-open → trial requests decide:
// `halfOpenRequests` successes close it, any failure re-opens it.
import type { BreakerState } from './types.js';
import { RollingCounter } from './rolling-window.js';

export interface BreakerSettings {
  failureRatio: number;
  minRequests: number;
  windowMs: number;
  openMs: number;
  halfOpenRequests: number;
}

export const BREAKER_DEFAULTS: Readonly<BreakerSettings> = {
  failureRatio: 0.5,
  minRequests: 20,
  windowMs: 10_000,
  openMs: 30_000,
  halfOpenRequests: 1,
};

export type BreakerTransition =
  | { to: 'open'; requests: number; failures: number }
  | { to: 'half-open' }
  | { to: 'closed' };

export class CircuitBreaker {
  private st: BreakerState = 'closed';
  private readonly requests: RollingCounter;
  private readonly failures: RollingCounter;
  private openedAt = 0;
  /** half-open bookkeeping */
  private trialsStarted = 0;
  private trialsInflight = 0;
  private trialSuccesses = 0;

  constructor(
    private readonly s: BreakerSettings,
    private readonly onTransition: (t: BreakerTransition) => void,
  ) {
    this.requests = new RollingCounter(s.windowMs);
    this.failures = new RollingCounter(s.windowMs);
  }

  get state(): BreakerState {
    return this.st;
  }

  /** May a new request go out? Moves open → half-open once openMs has elapsed. */
  canPass(now: number): boolean {
    if (this.st === 'closed') return true;
    if (this.st === 'open') {
      if (now - this.openedAt < this.s.openMs) return false;
      this.st = 'half-open';
      this.trialsStarted = 0;
      this.trialsInflight = 0;
      this.trialSuccesses = 0;
      this.onTransition({ to: 'half-open' });
    }
    return this.trialsInflight < this.s.halfOpenRequests;
  }

  onBegin(): void {
    if (this.st === 'half-open') {
      this.trialsStarted++;
      this.trialsInflight++;
    }
  }

  /** An attempt ended without a verdict: free its trial slot (if it was one). */
  onCancel(): void {
    if (this.st === 'half-open' && this.trialsStarted > 0 && this.trialsInflight > 0) this.trialsInflight--;
  }

  onEnd(failed: boolean, now: number): void {
    if (this.st === 'closed') {
      this.requests.add(now);
      if (failed) this.failures.add(now);
      else return; // a success can't trip the breaker
      const req = this.requests.sum(now);
      if (req < this.s.minRequests) return;
      const fail = this.failures.sum(now);
      if (fail / req >= this.s.failureRatio) this.open(now, req, fail);
      return;
    }
    if (this.st === 'open') return; // requests that started before it opened: no new information
    // half-open. Without a per-request token we can't tell trials from requests that began before the
    // breaker opened; ends that arrive before any trial started are certainly stale, so ignore those.
    if (this.trialsStarted === 0) return;
    if (this.trialsInflight > 0) this.trialsInflight--;
    if (failed) {
      this.open(now, 0, 0);
      return;
    }
    if (++this.trialSuccesses >= this.s.halfOpenRequests) {
      this.st = 'closed';
      this.requests.reset();
      this.failures.reset();
      this.onTransition({ to: 'closed' });
    }
  }

  private open(now: number, requests: number, failures: number): void {
    this.st = 'open';
    this.openedAt = now;
    this.requests.reset();
    this.failures.reset();
    this.onTransition({ to: 'open', requests, failures });
  }
}
