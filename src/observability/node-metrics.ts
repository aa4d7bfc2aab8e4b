// One /metrics answer per node. In cluster mode every worker has its own prom-client registry and the
// status port is shared, so a scrape reached one worker at random and its counters seemed to appear and
// vanish. Now the worker that gets the scrape asks the primary, which merges every worker's registry with
// prom-client's AggregatorRegistry (counters summed, gauges per worker by default) and answers.
import cluster from 'node:cluster';
import { AggregatorRegistry, register, type PrometheusContentType } from 'prom-client';

export const METRICS_REQUEST = 'portcullis:metrics-request';
export const METRICS_REPLY = 'portcullis:metrics-reply';
export interface MetricsRequestMessage { readonly type: typeof METRICS_REQUEST; readonly id: number }
export interface MetricsReplyMessage { readonly type: typeof METRICS_REPLY; readonly id: number; readonly text?: string; readonly error?: string }

const REPLY_TIMEOUT_MS = 5000;
export const metricsContentType: string = register.contentType;

// Worker side: one IPC channel per worker process, so one table of pending scrapes (process-wide by nature).
const pending = new Map<number, { resolve: (text: string) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }>();
let nextId = 0;
let listening = false;

function onReply(m: unknown): void {
  const r = m as MetricsReplyMessage | undefined;
  if (r?.type !== METRICS_REPLY) return;
  const p = pending.get(r.id);
  if (p === undefined) return;
  pending.delete(r.id);
  clearTimeout(p.timer);
  if (r.text !== undefined) p.resolve(r.text);
  else p.reject(new Error(r.error ?? 'no metrics'));
}

/**
 * The node's metrics in Prometheus text format: merged across workers when this process is one of
 * several, else this process's registry.
 */
export function nodeMetrics(workers: number): Promise<string> {
  if (!cluster.isWorker || workers <= 1 || process.send === undefined) return register.metrics();
  if (!listening) { listening = true; process.on('message', onReply); }
  const id = ++nextId;
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { pending.delete(id); reject(new Error('the primary did not answer the metrics request')); }, REPLY_TIMEOUT_MS);
    timer.unref();
    pending.set(id, { resolve, reject, timer });
    try {
      process.send!({ type: METRICS_REQUEST, id } satisfies MetricsRequestMessage);
    } catch (err) {
      pending.delete(id);
      clearTimeout(timer);
      reject(err as Error);
    }
  });
}

let aggregator: AggregatorRegistry<PrometheusContentType> | undefined;

/** Primary side: answers a worker's metrics request with the merge of every live worker's registry. */
export function answerMetricsRequest(worker: { send(m: MetricsReplyMessage): unknown }, m: MetricsRequestMessage): void {
  aggregator ??= new AggregatorRegistry<PrometheusContentType>();
  aggregator.clusterMetrics().then(
    (text) => { try { worker.send({ type: METRICS_REPLY, id: m.id, text }); } catch { /* worker gone */ } },
    (err: unknown) => { try { worker.send({ type: METRICS_REPLY, id: m.id, error: err instanceof Error ? err.message : String(err) }); } catch { /* worker gone */ } },
  );
}

/**
 * Worker side, once at start: answer the primary's requests for this worker's registry. prom-client adds
 * that listener when an AggregatorRegistry is created in the process, so one is created here.
 */
export function serveWorkerMetrics(): void {
  if (cluster.isWorker) aggregator ??= new AggregatorRegistry<PrometheusContentType>();
}

export function isMetricsRequest(m: unknown): m is MetricsRequestMessage {
  return (m as MetricsRequestMessage | undefined)?.type === METRICS_REQUEST;
}
