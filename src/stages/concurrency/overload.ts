// Load shedding: while the event loop lags past a threshold, new requests get 503 `overloaded` with
// Retry-After before routing (src/server/handler.ts reads `runtime.overload.shedding`, one field read per
// request). Answering early and cheaply keeps the process alive under a flood; queuing the work would
// only make every request time out late.
//
// The lag is measured by a drift probe: an unref'd timer that should fire every PROBE_MS; how late it
// fires is how long the loop was busy. The worst delay over each sample window decides. (Node's
// monitorEventLoopDelay drops the stall that spans a histogram reset, so it cannot be read per window.)
// The shedder is a long-lived service: reloads that keep the settings keep the probe and its state.
// Each process (cluster worker) measures its own loop. The status listener is a separate server and
// never goes through this check.
import { Counter, Gauge, register } from 'prom-client';
import type { Service, ServiceScope } from '../../services/services.js';
import { serviceKey } from '../../services/services.js';
import type { Logger } from '../../observability/logger.js';
import type { LoadSheddingConfig } from './schema.js';

export const LAG_METRIC = 'portcullis_event_loop_lag_seconds';
export const SHED_METRIC = 'portcullis_requests_shed_total';
export const DEFAULT_SAMPLE_INTERVAL_MS = 100;
export const SHED_DETAIL = 'the gateway is overloaded; retry shortly';
const PROBE_MS = 10;

const live = new Set<LoadShedder>();
/** requests shed by shedders that have since closed (keeps the counter monotonic) */
let shedByClosed = 0;

export class LoadShedder implements Service {
  /** read per request by the handler */
  shedding = false;
  /** requests refused while shedding (incremented by the handler; the metric reads it at scrape time) */
  shed = 0;
  /** worst event-loop delay of the last complete window, ms */
  lagMs = 0;
  /** extra headers of the 503 */
  readonly headers: Readonly<Record<string, string>>;
  private readonly thresholdMs: number;
  private readonly windowMs: number;
  private timer: NodeJS.Timeout | undefined;
  private last = 0;
  private windowStart = 0;
  private windowMax = 0;
  private shedAtStart = 0;

  constructor(cfg: LoadSheddingConfig, private readonly logger: Logger) {
    this.thresholdMs = cfg.eventLoopLagMs;
    this.windowMs = cfg.sampleIntervalMs ?? DEFAULT_SAMPLE_INTERVAL_MS;
    this.headers = Object.freeze({ 'retry-after': String(cfg.retryAfterSeconds ?? 1) });
    metrics();
    live.add(this);
    this.last = this.windowStart = performance.now();
    this.timer = setInterval(this.probe, PROBE_MS);
    this.timer.unref();
  }

  private readonly probe = (): void => {
    const now = performance.now();
    const late = now - this.last - PROBE_MS;
    this.last = now;
    if (late > this.windowMax) this.windowMax = late;
    if (now - this.windowStart < this.windowMs) return;
    this.decide(this.windowMax);
    this.windowMax = 0;
    this.windowStart = now;
  };

  /** Ends a sample window whose worst delay was `lagMs`. */
  decide(lagMs: number): void {
    this.lagMs = lagMs;
    const over = lagMs > this.thresholdMs;
    if (over === this.shedding) return;
    this.shedding = over;
    if (over) {
      this.shedAtStart = this.shed;
      this.logger.warn({ event: 'load-shedding', state: 'on', lag_ms: Math.round(lagMs), threshold_ms: this.thresholdMs }, `event loop lag ${Math.round(lagMs)} ms over ${this.thresholdMs} ms: shedding new requests (503)`);
    } else {
      this.logger.info({ event: 'load-shedding', state: 'off', lag_ms: Math.round(lagMs), shed: this.shed - this.shedAtStart }, `event loop lag back to ${Math.round(lagMs)} ms: load shedding off`);
    }
  }

  ready(): Promise<void> { return Promise.resolve(); }

  close(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    if (live.delete(this)) shedByClosed += this.shed;
    this.shedding = false;
    return Promise.resolve();
  }
}

/** The process's load shedder for these settings (reused across reloads), or undefined when off. */
export function compileLoadShedding(cfg: LoadSheddingConfig | undefined, services: ServiceScope, logger: Logger): LoadShedder | undefined {
  if (cfg === undefined) return undefined;
  return services.use(serviceKey('load-shedding', cfg), () => new LoadShedder(cfg, logger));
}

function metrics(): void {
  if (register.getSingleMetric(LAG_METRIC) === undefined) {
    new Gauge({
      name: LAG_METRIC,
      help: 'Worst event-loop delay over the last load-shedding sample window (seconds)',
      collect() {
        let worst = 0;
        for (const s of live) if (s.lagMs > worst) worst = s.lagMs;
        this.set(worst / 1000);
      },
    });
  }
  if (register.getSingleMetric(SHED_METRIC) === undefined) {
    let reported = 0;
    new Counter({
      name: SHED_METRIC,
      help: 'Requests answered 503 overloaded because the event loop lagged',
      collect() {
        let total = shedByClosed;
        for (const s of live) total += s.shed;
        if (total > reported) { this.inc(total - reported); reported = total; }
      },
    });
  }
}
