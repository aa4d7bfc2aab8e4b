// Contract between the proxy (src/proxy) and the upstream layer (pools, balancing, health, breaking).
import type { Dispatcher } from 'undici';

/** One backend origin with its own keep-alive connection pool. */
export interface UpstreamTarget {
  /** e.g. "http://127.0.0.1:9000" */
  readonly origin: string;
  /** Host header value for this target (host[:port]) */
  readonly host: string;
  /** undici Pool for this origin; the proxy calls `dispatcher.dispatch(opts, handler)`. */
  readonly dispatcher: Dispatcher;
  readonly weight: number;
  /** Requests currently in flight to this target (maintained by the upstream layer via begin/end). */
  inflight: number;
  healthy: boolean;
}

/** Result of one attempt, reported back so passive health checks, breaker and balancer can learn. */
export type AttemptOutcome =
  | { kind: 'response'; status: number }
  | { kind: 'error'; error: 'connect' | 'timeout' | 'reset' | 'other' }
  /** Abandoned for reasons that say nothing about the target (e.g. the client went away):
   *  only in-flight accounting is updated; health checks and the breaker ignore it. */
  | { kind: 'cancelled' };

export interface RetryPolicy {
  /** extra attempts after the first one */
  readonly attempts: number;
  readonly retryOnStatus: ReadonlySet<number>;
  /** Ask the budget for one retry; false = budget exhausted */
  tryAcquireRetry(): boolean;
}

export interface UpstreamTimeouts { connectMs: number; firstByteMs: number; totalMs: number }

export interface Upstream {
  readonly name: string;
  /**
   * Choose a target. `hashKey` is the consistent-hash input (header/cookie/client IP value) or undefined.
   * `exclude` lists targets already tried for this request (retries go elsewhere when possible).
   * Returns null when no target is available (all ejected/unhealthy/breaker open) => 503.
   */
  pick(hashKey: string | undefined, exclude?: readonly UpstreamTarget[]): UpstreamTarget | null;
  /** Call when an attempt starts / ends (in-flight accounting for least-requests, breaker, passive checks). */
  begin(target: UpstreamTarget): void;
  end(target: UpstreamTarget, outcome: AttemptOutcome): void;
  /** How the consistent-hash key is taken from a request, compiled from config (undefined for other balancers). */
  readonly hashOn: { kind: 'header'; name: string } | { kind: 'cookie'; name: string } | { kind: 'clientIp' } | undefined;
  readonly retry: RetryPolicy;
  readonly timeouts: UpstreamTimeouts;
  /** true if the upstream has active health checks and at least one target is healthy, or has none */
  isReady(): boolean;
  /** Start timers (active health checks). */
  start(): void;
  /** Stop timers, close pools after in-flight requests finish. */
  close(): Promise<void>;
}

// ---------------------------------------------------------------- extensions (upstream layer)

/**
 * State transitions worth logging. Emitted only on transitions, never per request — except the `tls-*`
 * security events, emitted once per failed handshake (passive health ejects a failing target, which
 * bounds them). `target` is the target's origin.
 */
export type UpstreamEvent =
  /** passive health: consecutive failures (or one failure while on probation) took the target out */
  | { type: 'target-ejected'; upstream: string; target: string; failures: number; cooldownMs: number }
  /** passive health: first success after the cool-down (probation passed) */
  | { type: 'target-recovered'; upstream: string; target: string }
  /** active health: unhealthyThreshold probes failed in a row; `reason` is the last failure */
  | { type: 'target-unhealthy'; upstream: string; target: string; reason: string }
  /** active health: healthyThreshold probes succeeded in a row */
  | { type: 'target-healthy'; upstream: string; target: string }
  | { type: 'breaker-opened'; upstream: string; requests: number; failures: number; openMs: number }
  | { type: 'breaker-half-open'; upstream: string }
  | { type: 'breaker-closed'; upstream: string }
  /** TLS: the target's certificate key matched none of `tls.pins`; `observed` is the pin it presented */
  | { type: 'tls-pin-mismatch'; upstream: string; target: string; observed: string }
  /** TLS: the target's certificate did not verify (unknown CA, expired, wrong name); `code` is Node's error code */
  | { type: 'tls-verify-failed'; upstream: string; target: string; code: string };

export type BreakerState = 'closed' | 'open' | 'half-open';

/** Point-in-time view for the status endpoint (allocates; not for the request path). */
export interface UpstreamSnapshot {
  readonly name: string;
  readonly breaker: BreakerState | 'disabled';
  readonly targets: readonly {
    readonly origin: string;
    readonly weight: number;
    readonly healthy: boolean;
    readonly ejected: boolean;
    readonly inflight: number;
    readonly consecutiveFailures: number;
  }[];
}

/** What createUpstream returns: the proxy contract plus management hooks for the gateway. */
export interface ManagedUpstream extends Upstream {
  readonly targets: readonly UpstreamTarget[];
  snapshot(): UpstreamSnapshot;
  /** Stop timers and abort in-flight upstream requests (hard shutdown / drain deadline passed). */
  destroy(): Promise<void>;
}
