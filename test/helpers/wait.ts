// Bounded polling for conditions that have no event to wait on (health state, breaker timers, async
// log writes). Fails with a clear message instead of hanging the suite.
import { setTimeout as delay } from 'node:timers/promises';

export async function waitFor<T>(
  check: () => T | undefined | false | null | Promise<T | undefined | false | null>,
  opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 5000;
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
  const deadline = performance.now() + (opts.timeoutMs ?? 5000);
  let last = read();
  let same = 0;
  for (;;) {
    await delay(intervalMs);
    const v = read();
    if (v === last) { if (++same >= stableFor) return v; } else { same = 0; last = v; }
    if (performance.now() > deadline) throw new Error(`value kept changing (last ${v})`);
  }
}

/** Rejects if `p` has not settled within `ms` (turns a hang into a failure). */
export function within<T>(p: Promise<T>, ms: number, what = 'operation'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms); });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
