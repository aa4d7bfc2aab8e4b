// Bulkheads: counters of requests in flight with a bounded FIFO waiting room. A Gate is one limit (a
// route, an upstream) or one limit per key (per consumer). Gates are long-lived services, keyed by their
// configuration, so a reload that keeps the limit keeps the count: requests of the old generation release
// into the same gate the new generation acquires from.
//
// Counters are per process. With N workers a limit of M admits up to N×M node-wide: a node-wide count
// would need an IPC round trip per request, which costs more than the bulkhead protects.
//
// A released slot is handed straight to the oldest waiter (the count does not drop), so a new arrival
// never overtakes the queue.
import type { Service } from '../../services/services.js';

/** One queued request, as a gate sees it. */
export interface GateWaiter {
  /** a slot of the gate it waits on was handed over (it now counts as held) */
  granted(): void;
  /** the gate closed while it was waiting */
  abandoned(): void;
}

export interface GateLimits {
  readonly maxInFlight: number;
  /** 0 = no waiting room */
  readonly maxQueue: number;
  readonly maxWaitMs: number;
}

export interface GateStats {
  readonly name: string;
  readonly inFlight: number;
  readonly queued: number;
  /** keyed gates: keys with something in flight or queued */
  readonly keys: number;
}

/** Gates that are open in this process (for the status endpoint and tests). */
const live = new Set<Gate>();

export function bulkheadStats(): GateStats[] {
  return [...live].map((g) => g.stats());
}

export abstract class Gate implements Service {
  constructor(readonly name: string, readonly limits: GateLimits) {
    live.add(this);
  }

  /**
   * Takes a slot if one is free. `key` is the consumer, or the client IP when `anon` (keyed gates only;
   * the others ignore both).
   */
  abstract tryAcquire(key: string, anon: boolean): boolean;
  /** Joins the waiting room; false when there is none or it is full. */
  abstract enqueue(key: string, anon: boolean, w: GateWaiter): boolean;
  /** Leaves the waiting room (timeout, client gone). */
  abstract dequeue(key: string, anon: boolean, w: GateWaiter): void;
  /** Gives a slot back: to the oldest waiter if any, else frees it. */
  abstract release(key: string, anon: boolean): void;
  abstract stats(): GateStats;
  protected abstract drainWaiters(): GateWaiter[];

  ready(): Promise<void> { return Promise.resolve(); }

  close(): Promise<void> {
    live.delete(this);
    // Only reached once no live generation uses the gate, so normally nobody waits; never leave one hanging.
    for (const w of this.drainWaiters()) w.abandoned();
    return Promise.resolve();
  }
}

function remove(q: GateWaiter[], w: GateWaiter): void {
  const i = q.indexOf(w);
  if (i >= 0) q.splice(i, 1);
}

/** One limit for everything that passes (a route, an upstream). */
export class SharedGate extends Gate {
  private inFlight = 0;
  private readonly queue: GateWaiter[] = [];

  tryAcquire(): boolean {
    if (this.inFlight >= this.limits.maxInFlight) return false;
    this.inFlight++;
    return true;
  }

  enqueue(_key: string, _anon: boolean, w: GateWaiter): boolean {
    if (this.queue.length >= this.limits.maxQueue) return false;
    this.queue.push(w);
    return true;
  }

  dequeue(_key: string, _anon: boolean, w: GateWaiter): void { remove(this.queue, w); }

  release(): void {
    const w = this.queue.shift();
    if (w !== undefined) w.granted();
    else if (this.inFlight > 0) this.inFlight--;
  }

  stats(): GateStats { return { name: this.name, inFlight: this.inFlight, queued: this.queue.length, keys: 0 }; }

  protected drainWaiters(): GateWaiter[] { return this.queue.splice(0); }
}

/** Counts and waiting rooms of one key space. */
class KeySpace {
  readonly counts = new Map<string, number>();
  /** waiting rooms, only for keys at their limit */
  readonly queues = new Map<string, GateWaiter[]>();
}

/**
 * One limit per key (consumer). Identities and client IPs are separate key spaces, so a token subject
 * that happens to read like an IP address never shares the slots of that address. Entries exist only
 * while a key has something in flight or queued: the maps are bounded by the requests in flight, not by
 * the number of consumers ever seen.
 */
export class KeyedGate extends Gate {
  private readonly ids = new KeySpace();
  private readonly ips = new KeySpace();
  private queued = 0;

  tryAcquire(key: string, anon: boolean): boolean {
    const counts = (anon ? this.ips : this.ids).counts;
    const n = counts.get(key) ?? 0;
    if (n >= this.limits.maxInFlight) return false;
    counts.set(key, n + 1);
    return true;
  }

  enqueue(key: string, anon: boolean, w: GateWaiter): boolean {
    if (this.limits.maxQueue === 0) return false;
    const queues = (anon ? this.ips : this.ids).queues;
    let q = queues.get(key);
    if (q === undefined) { q = []; queues.set(key, q); }
    // The waiting room is per key: one consumer's queue never fills another's.
    if (q.length >= this.limits.maxQueue) return false;
    q.push(w);
    this.queued++;
    return true;
  }

  dequeue(key: string, anon: boolean, w: GateWaiter): void {
    const queues = (anon ? this.ips : this.ids).queues;
    const q = queues.get(key);
    if (q === undefined) return;
    const before = q.length;
    remove(q, w);
    this.queued -= before - q.length;
    if (q.length === 0) queues.delete(key);
  }

  release(key: string, anon: boolean): void {
    const space = anon ? this.ips : this.ids;
    const q = space.queues.get(key);
    if (q !== undefined) {
      const w = q.shift()!;
      this.queued--;
      if (q.length === 0) space.queues.delete(key);
      w.granted();
      return;
    }
    const n = space.counts.get(key);
    if (n === undefined) return;
    if (n <= 1) space.counts.delete(key);
    else space.counts.set(key, n - 1);
  }

  stats(): GateStats {
    let inFlight = 0;
    for (const n of this.ids.counts.values()) inFlight += n;
    for (const n of this.ips.counts.values()) inFlight += n;
    return { name: this.name, inFlight, queued: this.queued, keys: this.ids.counts.size + this.ips.counts.size };
  }

  protected drainWaiters(): GateWaiter[] {
    const all = [...this.ids.queues.values(), ...this.ips.queues.values()].flat();
    this.ids.queues.clear();
    this.ips.queues.clear();
    this.queued = 0;
    return all;
  }
}
