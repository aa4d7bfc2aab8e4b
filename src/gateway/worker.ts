// A cluster worker: serves traffic with a Gateway built from the configuration the primary validated and
// sent over IPC. It never reads or validates configuration files itself (see run.ts).
import cluster from 'node:cluster';
import { Gateway } from './gateway.js';
import { createLogger } from '../observability/logger.js';
import type { GatewayConfig } from '../config/schema.js';
import type { ToPrimary, ToWorker } from './messages.js';
import { serveWorkerMetrics } from '../observability/node-metrics.js';

/** After shutdownTimeoutMs, the little a worker gets to close pools and stores before it exits anyway. */
const HARD_EXIT_GRACE_MS = 500;

export async function runWorker(): Promise<void> {
  const log = createLogger().child({ worker: cluster.worker?.id });
  const send = (m: ToPrimary) => { if (process.connected) process.send?.(m); };
  let gw: Gateway | undefined;
  let cfg: GatewayConfig | undefined;
  let stopping = false;

  const stop = async () => {
    if (stopping) return;
    stopping = true;
    const deadline = cfg?.server?.shutdownTimeoutMs ?? 30_000;
    // The listeners cut every connection at the deadline; whatever still hangs after it (an upstream pool
    // or a state store that does not close) must not hold the process until the primary's SIGKILL.
    // Exiting flushes the access log (its 'exit' hook).
    setTimeout(() => {
      log.error({ deadlineMs: deadline }, 'drain still running past the shutdown deadline; exiting now');
      process.exit(1);
    }, deadline + HARD_EXIT_GRACE_MS);
    if (gw) await gw.close(deadline);
    process.exit(0);
  };

  // Applied one at a time, in arrival order: a reload waits for the previous one.
  let queue: Promise<void> = Promise.resolve();
  const apply = (next: GatewayConfig, generation: number, baseDir: string) => {
    queue = queue.then(async () => {
      if (stopping) return;
      try {
        if (gw === undefined) {
          gw = await Gateway.start(next, { logger: log, baseDir });
          cfg = next;
          for (const l of next.listeners) {
            const a = gw.address(l.name);
            log.info({ listener: l.name, address: a.address, port: a.port }, `listening on ${a.address}:${a.port}`);
          }
          const s = gw.statusAddress();
          if (s) log.info({ listener: 'status', address: s.address, port: s.port }, `status on ${s.address}:${s.port}`);
          send({ type: 'ready', generation });
        } else {
          await gw.reload(next);
          cfg = next;
          send({ type: 'reloaded', generation });
        }
      } catch (err) {
        const message = (err as Error).message;
        if (gw === undefined) {
          // Cannot serve at all (e.g. a port is taken): report and exit so the primary can decide.
          log.error({ err: message }, 'worker failed to start');
          send({ type: 'start-failed', error: message });
          process.exit(1);
        }
        log.error({ err: message }, 'configuration rejected at compile; keeping the running one');
        send({ type: 'reload-failed', generation, error: message });
      }
    });
  };

  // the primary merges every worker's metrics for a scrape (src/observability/node-metrics.ts)
  serveWorkerMetrics();
  process.on('message', (m: ToWorker) => {
    if (m?.type === 'config') apply(m.config, m.generation, m.baseDir);
    else if (m?.type === 'shutdown') void stop();
  });
  // The primary coordinates signals; a Ctrl-C reaches the whole process group, so drain on it too.
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
  process.on('SIGHUP', () => { /* the primary reloads */ });
  // If the primary dies, a worker must not linger holding sockets.
  process.on('disconnect', () => void stop());
  send({ type: 'hello' });
}
