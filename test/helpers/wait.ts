// Bounded polling for conditions that have no event to wait on (health state, breaker timers, async
// log writes). Fails with a clear message instead of hanging the suite.
import { setTimeout as delay } from 'node:timers/promises';

/**
 * Multiplies every deadline the helpers use (PORTCULLIS_TEST_TIMEOUT_SCALE, default 1). The defaults are
 * already generous enough for a machine whose cores are busy; raise it for very slow machines. Deadlines
 * only decide how long a wait may take before it fails: every wait returns as soon as its condition holds.
 */
export const TIMEOUT_SCALE: number = (() => {
  const v = Number(process.env.PORTCULLIS_TEST_TIMEOUT_SCALE ?? '1');
  return Number.isFinite(v) && v > 0 ? v : 1;
})();

/** `ms` times PORTCULLIS_TEST_TIMEOUT_SCALE */
export function scaled(ms: number): number {
  return Math.round(ms * TIMEOUT_SCALE);
}

export async function waitFor<T>(
  check: () => T | undefined | false | null | Promise<T | undefined | false | null>,
  opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<T> {
  const timeoutMs = scaled(opts.timeoutMs ?? 30_000);
  const intervalMs = opts.intervalMs ?? 20;
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false && v !== null) return v;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${opts.what ?? 'condition'}`);
    await delay(intervalMs);
  }
}

/** Waits until `read()` stops changing for `stableFor` consecutive polls (e.g. a writer blocked by backpressure). */
export async function waitStable(read: () => number, opts: { intervalMs?: number; stableFor?: number; timeoutMs?: number } = {}): Promise<number> {
  const intervalMs = opts.intervalMs ?? 50;
  const stableFor = opts.stableFor ?? 4;
  const deadline = performance.now() + scaled(opts.timeoutMs ?? 30_000);
  let last = read();
  let same = 0;
  for (;;) {
    await delay(intervalMs);
    const v = read();
    if (v === last) { if (++same >= stableFor) return v; } else { same = 0; last = v; }
    if (performance.now() > deadline) throw new Error(`value kept changing (last ${v})`);
  }
}

/** Rejects if `p` has not settled within `ms` (scaled; turns a hang into a failure). */
export function within<T>(p: Promise<T>, timeoutMs: number, what = 'operation'): Promise<T> {
  const ms = scaled(timeoutMs);
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms); });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
