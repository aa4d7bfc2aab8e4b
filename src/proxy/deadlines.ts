// Total-time deadlines for upstream exchanges without a timer per request. A per-request setTimeout
// allocates a Timeout object and touches the timer lists twice (arm and clear) on every request; here an
// exchange links itself into an intrusive list (no allocation, O(1) unlink), and one unref'd interval per
// granularity sweeps the few that are in flight. A deadline fires up to `granularityMs` late, which is
// fine for a timeout measured in seconds. (A Set was tried first: under load it made V8 promote
// per-request state out of the young generation and doubled GC time.)

export interface Expirable {
  /** performance.now() value after which the exchange must be cut */
  deadline: number;
  /** list links owned by the sweeper */
  dlPrev: Expirable | undefined;
  dlNext: Expirable | undefined;
  expire(): void;
}

export class DeadlineSweeper {
  private head: Expirable | undefined;
  private count = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly granularityMs: number) {}

  add(e: Expirable): void {
    e.dlPrev = undefined;
    e.dlNext = this.head;
    if (this.head !== undefined) this.head.dlPrev = e;
    this.head = e;
    this.count++;
    if (this.timer === undefined) {
      this.timer = setInterval(() => this.sweep(), this.granularityMs);
      this.timer.unref();
    }
  }

  delete(e: Expirable): void {
    const { dlPrev, dlNext } = e;
    if (dlPrev === undefined && this.head !== e) return; // not linked
    if (dlPrev !== undefined) dlPrev.dlNext = dlNext;
    else this.head = dlNext;
    if (dlNext !== undefined) dlNext.dlPrev = dlPrev;
    e.dlPrev = e.dlNext = undefined;
    this.count--;
  }

  get size(): number { return this.count; }

  private sweep(): void {
    if (this.head === undefined) {
      // Idle: stop ticking until the next exchange arrives.
      clearInterval(this.timer);
      this.timer = undefined;
      return;
    }
    const now = performance.now();
    let e: Expirable | undefined = this.head;
    while (e !== undefined) {
      const next: Expirable | undefined = e.dlNext;
      if (e.deadline <= now) {
        this.delete(e);
        e.expire();
      }
      e = next;
    }
  }
}

const sweepers = new Map<number, DeadlineSweeper>();

/**
 * Shared sweeper for a timeout length: granularity is a tenth of the timeout, clamped to 10 ms – 1 s.
 * Process-wide on purpose (like Node's own timer lists): it holds only in-flight exchanges.
 */
export function sweeperFor(timeoutMs: number): DeadlineSweeper {
  const g = Math.min(1000, Math.max(10, Math.floor(timeoutMs / 10)));
  let s = sweepers.get(g);
  if (s === undefined) sweepers.set(g, (s = new DeadlineSweeper(g)));
  return s;
}
