// The memory store in cluster mode. The primary owns one MemoryState for the whole node (StatePrimary);
// each worker's store (IpcStateStore) sends its operations to the primary over the cluster IPC channel
// and waits for the answer, so a replay check or a limit holds across workers, not per worker.
//
// Wire format (node:cluster 'json' serialization): operations are batched per event-loop turn —
//   worker → primary  { type: 'state', batch: [[id, request], ...] }
//   primary → worker  { type: 'state', replies: [[id, true, result] | [id, false, errorMessage], ...] }
// One message per turn however many requests need the store, so under load the IPC cost is shared.
// A call the primary does not answer within the timeout (default 1 s) is rejected; callers fail closed.
// There is one channel client per worker process (one 'message' listener, one sweep timer while calls
// are pending), whatever the number of stores or configuration generations.
import { MemoryState, DEFAULT_MAX_ENTRIES } from './memory.js';
import { applyOp, isStateRequest, type StateRequest, type StateResults } from './ops.js';
import type { RateCheck, RateResult, StateStore } from './types.js';

export type StateCall = readonly [id: number, req: StateRequest];
export type StateReply = readonly [id: number, ok: true, result: StateResults[keyof StateResults]] | readonly [id: number, ok: false, error: string];

export interface StateRequestMessage { readonly type: 'state'; readonly batch: readonly StateCall[] }
export interface StateReplyMessage { readonly type: 'state'; readonly replies: readonly StateReply[] }

export const DEFAULT_IPC_TIMEOUT_MS = 1000;

/** Primary side: answers the workers' batches from the node's one in-memory store. */
export class StatePrimary {
  readonly state: MemoryState;

  constructor(maxEntries = DEFAULT_MAX_ENTRIES) { this.state = new MemoryState(maxEntries); }

  /** The reply to send back to the worker, or undefined when `m` is not a state batch. Never throws. */
  handle(m: unknown): StateReplyMessage | undefined {
    const batch = (m as { batch?: unknown } | null)?.batch;
    if (!Array.isArray(batch)) return undefined;
    const now = Date.now();
    const replies: StateReply[] = [];
    for (const call of batch as unknown[]) {
      if (!Array.isArray(call) || typeof call[0] !== 'number') continue;
      const id = call[0];
      const req: unknown = call[1];
      if (!isStateRequest(req)) { replies.push([id, false, 'malformed state operation']); continue; }
      replies.push([id, true, applyOp(this.state, req, now)]);
    }
    return { type: 'state', replies };
  }
}

/** The worker's end of the IPC channel (process.send / process 'message' in a real worker; a fake in tests). */
export interface StatePort {
  /** false or throws when the channel is closed */
  send(m: StateRequestMessage, onError: (err: Error) => void): void;
  onMessage(fn: (m: unknown) => void): void;
}

export function processPort(): StatePort {
  return {
    send(m, onError) {
      if (process.send === undefined || !process.connected) throw new Error('no IPC channel to the cluster primary');
      process.send(m, undefined, undefined, (err: Error | null) => { if (err) onError(err); });
    },
    onMessage(fn) { process.on('message', fn); },
  };
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  readonly deadline: number;
}

/** Request/response over a StatePort: ids, per-turn batching, timeouts. */
export class StateChannel {
  private nextId = 1;
  /** insertion order = send order = deadline order (one fixed timeout), so the sweep stops at the first live one */
  private readonly pending = new Map<number, Pending>();
  private queue: StateCall[] = [];
  private flushScheduled = false;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(private readonly port: StatePort, private readonly timeoutMs = DEFAULT_IPC_TIMEOUT_MS) {
    port.onMessage((m) => this.onMessage(m));
  }

  call<R extends StateRequest>(req: R): Promise<StateResults[R['op']]> {
    return new Promise<StateResults[R['op']]>((resolve, reject) => {
      const id = this.nextId++;
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, deadline: Date.now() + this.timeoutMs });
      this.queue.push([id, req]);
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(this.flush);
      }
      // ref'd on purpose, and only while calls are pending: a pending call must settle even if nothing else is going on
      this.sweeper ??= setInterval(this.sweep, Math.max(10, this.timeoutMs >> 2));
    });
  }

  get inFlight(): number { return this.pending.size; }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    const fail = (err: Error): void => { for (const [id] of batch) this.settle(id, false, err.message); };
    try {
      this.port.send({ type: 'state', batch }, fail);
    } catch (err) {
      fail(err as Error);
    }
  };

  private onMessage(m: unknown): void {
    if (typeof m !== 'object' || m === null || (m as { type?: unknown }).type !== 'state') return;
    const replies = (m as { replies?: unknown }).replies;
    if (!Array.isArray(replies)) return;
    for (const r of replies as unknown[]) {
      if (Array.isArray(r) && typeof r[0] === 'number') this.settle(r[0], r[1] === true, r[2]);
    }
  }

  private settle(id: number, ok: boolean, value: unknown): void {
    const p = this.pending.get(id);
    if (p === undefined) return; // timed out already
    this.pending.delete(id);
    if (ok) p.resolve(value);
    else p.reject(new Error(`state store (cluster primary): ${typeof value === 'string' ? value : 'failed'}`));
    this.stopSweeperIfIdle();
  }

  private readonly sweep = (): void => {
    const now = Date.now();
    for (const [id, p] of this.pending) {
      if (p.deadline > now) break;
      this.pending.delete(id);
      p.reject(new Error(`state store (cluster primary) did not answer within ${this.timeoutMs} ms`));
    }
    this.stopSweeperIfIdle();
  };

  private stopSweeperIfIdle(): void {
    if (this.pending.size === 0 && this.sweeper !== undefined) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }
}

let processChannel: StateChannel | undefined;

/** The worker process's one channel to the primary (created on first use). */
export function workerStateChannel(): StateChannel {
  return (processChannel ??= new StateChannel(processPort()));
}

/** A worker's memory store: every operation is answered by the primary's store. */
export class IpcStateStore implements StateStore {
  readonly kind = 'memory' as const;

  constructor(private readonly channel: StateChannel) {}

  async ready(): Promise<void> {}
  /** The channel is per process and shared with later generations: nothing to close. */
  async close(): Promise<void> {}

  claimOnce(key: string, ttlMs: number): Promise<boolean> {
    return this.channel.call({ op: 'claimOnce', key, ttlMs });
  }

  /** One IPC round trip (batched with the turn's other operations); the primary's clock decides. */
  rateLimit(checks: readonly RateCheck[]): Promise<RateResult> {
    return this.channel.call({ op: 'rateLimit', checks });
  }
}
