// Total-time deadlines for upstream exchanges without a timer per request. A per-request setTimeout
// allocates a Timeout object and touches the timer lists twice (arm and clear) on every request; here an
// exchange joins a Set, and one unref'd interval per granularity sweeps the few that are in flight.
// A deadline fires up to `granularityMs` late, which is fine for a timeout measured in seconds.

export interface Expirable {
  /** performance.now() value after which the exchange must be cut */
  deadline: number;
  expire(): void;
}

export class DeadlineSweeper {
  private readonly active = new Set<Expirable>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly granularityMs: number) {}

  add(e: Expirable): void {
    this.active.add(e);
    if (this.timer === undefined) {
      this.timer = setInterval(() => this.sweep(), this.granularityMs);
      this.timer.unref();
    }
  }

  delete(e: Expirable): void {
    this.active.delete(e);
  }

  get size(): number { return this.active.size; }

  private sweep(): void {
    if (this.active.size === 0) {
      // Idle: stop ticking until the next exchange arrives.
      clearInterval(this.timer);
      this.timer = undefined;
      return;
    }
    const now = performance.now();
    for (const e of this.active) {
      if (e.deadline <= now) {
        this.active.delete(e);
        e.expire();
      }
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
