// The operations a state store performs, as data. Every store implements them; in cluster mode with the
// memory store a worker ships them to the primary over IPC (src/state/cluster.ts), so adding an operation
// (the rate limiter's counters) means: one request shape here, one result type, one case in applyOp and
// one method per store. Nothing else in the IPC path changes.
import type { MemoryState } from './memory.js';
import type { RateCheck, RateResult } from './types.js';

export type StateRequest =
  | { readonly op: 'claimOnce'; readonly key: string; readonly ttlMs: number }
  | { readonly op: 'rateLimit'; readonly checks: readonly RateCheck[] };

/** Result type of each operation. */
export interface StateResults {
  claimOnce: boolean;
  rateLimit: RateResult;
}

export type StateOpName = StateRequest['op'];

/** Runs one operation against an in-memory store (the single-process store and the cluster primary). */
export function applyOp(mem: MemoryState, req: StateRequest, nowMs: number): StateResults[StateOpName] {
  switch (req.op) {
    case 'claimOnce': return mem.claimOnce(req.key, req.ttlMs, nowMs);
    case 'rateLimit': return mem.rateLimit(req.checks, nowMs);
  }
}

/**
 * Shape check for a request that arrived over IPC: a worker is our own child, but a malformed message
 * must produce an error reply, never an exception in the primary.
 */
export function isStateRequest(x: unknown): x is StateRequest {
  if (typeof x !== 'object' || x === null) return false;
  const r = x as { op?: unknown; key?: unknown; ttlMs?: unknown; checks?: unknown };
  switch (r.op) {
    case 'claimOnce': return typeof r.key === 'string' && typeof r.ttlMs === 'number' && Number.isFinite(r.ttlMs) && r.ttlMs > 0;
    case 'rateLimit': return Array.isArray(r.checks) && r.checks.length > 0 && r.checks.length <= 64 && r.checks.every(isRateCheck);
    default: return false;
  }
}

const posNum = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v) && v > 0;

function isRateCheck(c: unknown): boolean {
  return Array.isArray(c) && c.length === 6 && (c[0] === 0 || c[0] === 1 || c[0] === 2) && typeof c[1] === 'string'
    && posNum(c[2]) && posNum(c[3]) && posNum(c[4]) && typeof c[5] === 'number' && Number.isFinite(c[5]) && c[5] >= 0;
}
