// Fixed-size bucketed counter over a sliding time window. Shared by the circuit breaker and the
// retry budget. Buckets are stamped with their epoch, so stale buckets are skipped/reset lazily:
// no timers, no allocation after construction.

export class RollingCounter {
  private readonly counts: Float64Array;
  /** epoch (now / bucketMs, floored) each slot currently holds */
  private readonly epochs: Float64Array;
  private readonly bucketMs: number;
  private readonly n: number;

  constructor(windowMs: number, buckets = 10) {
    this.n = Math.max(1, Math.floor(buckets));
    // A 0 ms window would divide by zero; 1 ms buckets make it effectively "last few ms".
    this.bucketMs = Math.max(1, Math.ceil(windowMs / this.n));
    this.counts = new Float64Array(this.n);
    this.epochs = new Float64Array(this.n).fill(-Infinity);
  }

  add(now: number, v = 1): void {
    const epoch = Math.floor(now / this.bucketMs);
    const i = ((epoch % this.n) + this.n) % this.n;
    if (this.epochs[i] !== epoch) {
      this.epochs[i] = epoch;
      this.counts[i] = 0;
    }
    this.counts[i]! += v;
  }

  /** Sum of the buckets inside the window ending at `now` (the current bucket included). */
  sum(now: number): number {
    const epoch = Math.floor(now / this.bucketMs);
    const oldest = epoch - this.n + 1;
    let s = 0;
    for (let i = 0; i < this.n; i++) {
      const e = this.epochs[i]!;
      if (e >= oldest && e <= epoch) s += this.counts[i]!;
    }
    return s;
  }

  reset(): void {
    this.counts.fill(0);
    this.epochs.fill(-Infinity);
  }
}
