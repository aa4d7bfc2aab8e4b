// A per-key log throttle for floods (refusals under attack must not become a flood of synchronous log
// writes): at most `burst` lines per key per window; the rest are counted, and the next line allowed for
// that key reports how many were suppressed. Keys must come from a bounded set (code constants, config).

export interface LogThrottle {
  /** undefined: suppress this line; a number: log it, with this many suppressed since the last one */
  admit(key: string): number | undefined;
}

interface LogWindow { start: number; logged: number; suppressed: number }

export function logThrottle(burst: number, windowMs: number, now: () => number = Date.now): LogThrottle {
  const windows = new Map<string, LogWindow>();
  return {
    admit(key) {
      const t = now();
      let w = windows.get(key);
      if (w === undefined || t - w.start >= windowMs) {
        w = { start: t, logged: 0, suppressed: w?.suppressed ?? 0 };
        windows.set(key, w);
      }
      if (w.logged >= burst) { w.suppressed++; return undefined; }
      w.logged++;
      const suppressed = w.suppressed;
      w.suppressed = 0;
      return suppressed;
    },
  };
}
