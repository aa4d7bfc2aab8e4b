// Passive health checking (outlier detection, Envoy-like). ON by default even without config:
// a target that fails `consecutiveFailures` times in a row is ejected for `cooldownMs`, then put on
// probation — eligible again, but a single failure re-ejects it (half-open); the first success
// clears the probation. Results arriving while a target is ejected are from requests started
// before the ejection and are ignored.

export interface PassiveSettings {
  consecutiveFailures: number;
  cooldownMs: number;
}

export const PASSIVE_DEFAULTS: Readonly<PassiveSettings> = { consecutiveFailures: 5, cooldownMs: 30_000 };
export const DEFAULT_FAIL_ON_STATUS: readonly number[] = [502, 503, 504];

/** Per-target mutable state (embedded in the target object). */
export interface PassiveState {
  failures: number;
  /** -Infinity when not ejected */
  ejectedUntil: number;
  probation: boolean;
}

export type PassiveTransition = 'ejected' | 'recovered' | null;

export function isEjected(s: PassiveState, now: number): boolean {
  return now < s.ejectedUntil;
}

export function recordOutcome(s: PassiveState, cfg: PassiveSettings, failed: boolean, now: number): PassiveTransition {
  if (now < s.ejectedUntil) return null;
  if (failed) {
    s.failures++;
    if (!s.probation && s.failures < cfg.consecutiveFailures) return null;
    s.ejectedUntil = now + cfg.cooldownMs;
    s.probation = true;
    return 'ejected';
  }
  s.failures = 0;
  if (!s.probation) return null;
  s.probation = false;
  return 'recovered';
}
