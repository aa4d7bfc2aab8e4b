// Active health checking: a GET probe per target every intervalMs. Probes for one target never
// overlap (the next one is scheduled when the previous finishes). Probes go through a dedicated
// single-connection Client per target, not the traffic Pool: a saturated pool would queue the
// probe, time it out and mark a busy-but-fine target unhealthy. Each probe asks for
// `Connection: close` so a keep-alive socket the target is about to drop can't fail it.
// Targets start healthy so a freshly started gateway serves traffic before the first verdict.
import { Client, type buildConnector } from 'undici';
import type { UpstreamConfig } from '../config/schema.js';

type ActiveConfig = NonNullable<NonNullable<UpstreamConfig['healthCheck']>['active']>;

export interface ActiveSettings {
  path: string;
  intervalMs: number;
  timeoutMs: number;
  healthyThreshold: number;
  unhealthyThreshold: number;
  /** explicit healthy statuses; null = 200-399 */
  expectStatus: ReadonlySet<number> | null;
  /** Host header override; default is the target's host */
  host: string | undefined;
}

export function compileActive(c: ActiveConfig): ActiveSettings {
  // 0 would mean a busy loop / instant timeout: treat it as "use the default".
  const pos = (v: number | undefined, def: number) => (v !== undefined && v > 0 ? v : def);
  return {
    path: c.path,
    intervalMs: pos(c.intervalMs, 5000),
    timeoutMs: pos(c.timeoutMs, 2000),
    healthyThreshold: c.healthyThreshold ?? 2,
    unhealthyThreshold: c.unhealthyThreshold ?? 3,
    expectStatus: c.expectStatus ? new Set(c.expectStatus) : null,
    host: c.host,
  };
}

export interface ProbeTarget {
  readonly origin: string;
  readonly host: string;
}

/** Called on transitions only. `reason` is the last failure when going unhealthy. */
export type HealthChange = (index: number, healthy: boolean, reason: string) => void;

const USER_AGENT = 'portcullis-health-check';

export class ActiveHealthChecker {
  private readonly healthy: boolean[];
  private readonly okStreak: number[];
  private readonly failStreak: number[];
  private readonly timers: (NodeJS.Timeout | undefined)[];
  private readonly running: (Promise<void> | undefined)[];
  private clients: Client[] | undefined;
  private readonly abort = new AbortController();
  private started = false;
  private stopped = false;

  constructor(
    private readonly targets: readonly ProbeTarget[],
    private readonly s: ActiveSettings,
    private readonly onChange: HealthChange,
    /** TLS-aware connector for https targets (same verification, pins and client certificate as traffic) */
    private readonly connectorFor?: (origin: string, timeoutMs: number) => buildConnector.connector | undefined,
  ) {
    const n = targets.length;
    this.healthy = new Array<boolean>(n).fill(true);
    this.okStreak = new Array<number>(n).fill(0);
    this.failStreak = new Array<number>(n).fill(0);
    this.timers = new Array<NodeJS.Timeout | undefined>(n).fill(undefined);
    this.running = new Array<Promise<void> | undefined>(n).fill(undefined);
  }

  isHealthy(i: number): boolean {
    return this.healthy[i] ?? false;
  }

  /** Idempotent. The first probe runs immediately so a dead target is found quickly. */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.clients = this.targets.map((t) => new Client(t.origin, {
      pipelining: 1,
      connect: this.connectorFor?.(t.origin, this.s.timeoutMs) ?? { timeout: this.s.timeoutMs },
      headersTimeout: this.s.timeoutMs,
      bodyTimeout: this.s.timeoutMs,
    }));
    for (let i = 0; i < this.targets.length; i++) this.schedule(i, 0);
  }

  /** Stop timers, abort probes in flight and wait for them, so no change is reported afterwards. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.timers) if (t) clearTimeout(t);
    this.abort.abort();
    await Promise.all(this.running);
    await Promise.all((this.clients ?? []).map((c) => c.destroy().catch(() => {})));
  }

  private schedule(i: number, delay: number): void {
    if (this.stopped) return;
    const t = setTimeout(() => {
      this.timers[i] = undefined;
      this.running[i] = this.run(i);
    }, delay);
    t.unref();
    this.timers[i] = t;
  }

  private async run(i: number): Promise<void> {
    const failure = await this.probe(i);
    this.running[i] = undefined;
    if (this.stopped) return;
    this.record(i, failure);
    this.schedule(i, this.s.intervalMs);
  }

  /** Resolves to null on success, otherwise a short reason. Never rejects. (protected: tests override it) */
  protected async probe(i: number): Promise<string | null> {
    const client = this.clients![i]!;
    const target = this.targets[i]!;
    const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.s.timeoutMs)]);
    try {
      const res = await client.request({
        method: 'GET',
        path: this.s.path,
        headers: { host: this.s.host ?? target.host, 'user-agent': USER_AGENT },
        reset: true,
        signal,
      });
      const status = res.statusCode;
      // Drain (bounded) so the socket is released cleanly; the verdict doesn't depend on it.
      await res.body.dump({ limit: 64 * 1024, signal }).catch(() => {});
      const ok = this.s.expectStatus ? this.s.expectStatus.has(status) : status >= 200 && status < 400;
      return ok ? null : `status ${status}`;
    } catch (err) {
      return describeError(err);
    }
  }

  private record(i: number, failure: string | null): void {
    if (failure === null) {
      this.failStreak[i] = 0;
      const ok = ++this.okStreak[i]!;
      if (!this.healthy[i] && ok >= this.s.healthyThreshold) {
        this.healthy[i] = true;
        this.onChange(i, true, '');
      }
    } else {
      this.okStreak[i] = 0;
      const fail = ++this.failStreak[i]!;
      if (this.healthy[i] && fail >= this.s.unhealthyThreshold) {
        this.healthy[i] = false;
        this.onChange(i, false, failure);
      }
    }
  }
}

function describeError(err: unknown): string {
  if (err instanceof Error) {
    if (err.name === 'TimeoutError') return 'timeout';
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' ? code : err.name;
  }
  return 'error';
}
