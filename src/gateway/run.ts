// Process model for `portcullis start`: a node:cluster primary and N workers (N = server.workers, 1 by
// default). The primary never serves traffic. It owns the configuration: it reads and validates the file
// (at start, on SIGHUP and when the file changes) and sends the validated object to every worker, so a
// configuration is validated once and workers never load the config loader. It restarts crashed workers
// and coordinates graceful shutdown.
import { NODE_WORKERS_ENV } from '../state/index.js';
import { answerMetricsRequest, METRICS_REQUEST } from '../observability/node-metrics.js';
import { relayCachePurge } from '../services/cache-purge.js';
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { watch, type FSWatcher } from 'node:fs';
import { dirname, basename } from 'node:path';
import type { GatewayConfig } from '../config/schema.js';
import { loadConfigFile, formatIssue } from '../config/load.js';
import { createLogger, type Logger } from '../observability/logger.js';
import type { ToPrimary, ToWorker } from './messages.js';
import { StatePrimary } from '../state/cluster.js';

export interface RunOptions {
  configPath: string;
  config: GatewayConfig;
}

/** How long a reload waits for one worker's answer before sending the configuration to the next. */
const RELOAD_ACK_TIMEOUT_MS = 30_000;

export function workerCount(cfg: GatewayConfig): number {
  const w = cfg.server?.workers ?? 1;
  return w === 'auto' ? Math.max(1, availableParallelism()) : w;
}

/** Reads and validates the file again; logs every error and returns null if it is not usable. */
async function loadForReload(path: string, logger: Logger): Promise<GatewayConfig | null> {
  const r = await loadConfigFile(path);
  for (const w of r.warnings) logger.warn({ issue: formatIssue(w) }, 'config warning');
  if (!r.ok) {
    for (const e of r.errors) logger.error({ issue: formatIssue(e) }, 'config error');
    logger.error({ file: path, errors: r.errors.length }, 'new configuration rejected; keeping the running one');
    return null;
  }
  return r.config;
}

/** Coalesces bursts of change notifications (editors write files in several steps). */
function watchConfig(path: string, onChange: () => void): FSWatcher | undefined {
  let timer: NodeJS.Timeout | undefined;
  try {
    // Watch the directory: editors and `mv` replace the file, which ends a watch on the file itself.
    const w = watch(dirname(path), (_event, file) => {
      if (file !== null && file !== basename(path)) return;
      clearTimeout(timer);
      timer = setTimeout(onChange, 150);
    });
    w.unref();
    return w;
  } catch {
    return undefined;
  }
}

/** Serialises reloads: a reload requested while one runs is done once more afterwards. */
function reloader(run: () => Promise<void>): () => void {
  let running = false;
  let again = false;
  const go = (): void => {
    if (running) { again = true; return; }
    running = true;
    run().finally(() => {
      running = false;
      if (again) { again = false; go(); }
    });
  };
  return go;
}

export async function runGateway(opts: RunOptions): Promise<void> {
  const log = createLogger().child({ role: 'primary' });
  const n = workerCount(opts.config);
  let cfg = opts.config;
  let generation = 1;
  let shuttingDown = false;
  let everReady = false;
  const crashes: number[] = [];
  // The node's memory state store (DPoP jti replay cache, later rate-limit counters): workers ask over IPC.
  const statePrimary = new StatePrimary();
  log.info({ workers: n }, `starting ${n} worker${n === 1 ? '' : 's'}`);

  // Reload acknowledgements ('reloaded' or 'reload-failed') awaited per worker, see `reload` below.
  const acks = new Map<number, () => void>();
  const sendConfig = (w: Worker) => {
    try { w.send({ type: 'config', generation, config: cfg, baseDir: dirname(opts.configPath) } satisfies ToWorker); } catch { /* it is gone; exit handler forks */ }
  };

  let startup: { resolve: () => void; reject: (e: Error) => void } | undefined;
  const started = new Promise<void>((resolve, reject) => { startup = { resolve, reject }; });

  const fork = (): Worker => {
    const w = cluster.fork({ [NODE_WORKERS_ENV]: String(n) });
    w.on('message', (m: ToPrimary) => {
      switch (m.type) {
        case 'hello': sendConfig(w); break;
        case 'ready':
          if (!everReady) { everReady = true; startup?.resolve(); }
          break;
        case 'reloaded': log.info({ worker: w.id, generation: m.generation }, 'worker reloaded'); acks.get(w.id)?.(); break;
        case 'reload-failed': log.error({ worker: w.id, generation: m.generation, error: m.error }, 'worker kept its configuration'); acks.get(w.id)?.(); break;
        case 'start-failed':
          // Before anything ever served, a start failure (port taken, ...) is fatal, not a crash loop.
          if (!everReady) startup?.reject(new Error(m.error));
          break;
        case 'state': {
          const reply = statePrimary.handle(m);
          if (reply !== undefined) try { w.send(reply satisfies ToWorker); } catch { /* worker gone: its calls time out */ }
          break;
        }
        case METRICS_REQUEST:
          // a scrape on one worker's status port: answered with the whole node's metrics
          answerMetricsRequest(w, m);
          break;
        case 'cache-purge':
          // each worker has its own memory cache: a purge one worker received must reach them all
          relayCachePurge(w, m, Object.values(cluster.workers ?? {}));
          break;
      }
    });
    return w;
  };

  cluster.on('exit', (w, code, signal) => {
    if (shuttingDown) return;
    if (!everReady) {
      startup?.reject(new Error(`worker exited during start-up (code ${code ?? signal}); see the log above`));
      return;
    }
    log.error({ worker: w.id, code, signal }, 'worker died; starting a replacement');
    const now = Date.now();
    crashes.push(now);
    while (crashes.length > 0 && crashes[0]! < now - 10_000) crashes.shift();
    // A worker that dies at once every time (bad environment) must not become a fork bomb.
    const delay = crashes.length > 5 ? 1000 : 0;
    setTimeout(() => { if (!shuttingDown) fork(); }, delay);
  });
  // One worker: let it accept connections itself instead of the primary accepting each one and passing it
  // on (Node's round-robin default costs the primary ~300 µs of CPU per TLS handshake). With several
  // workers the primary keeps distributing, which spreads load evenly.
  if (n === 1) cluster.schedulingPolicy = cluster.SCHED_NONE;

  // Stop handlers before the first fork: a SIGTERM during start-up must drain and stop the workers too.
  let watcher: { close(): void } | undefined;
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    shuttingDown = true;
    watcher?.close();
    log.info('shutting down: draining in-flight requests');
    const deadline = (cfg.server?.shutdownTimeoutMs ?? 30_000) + 5000;
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
    await Promise.all(workers.map((w) => new Promise<void>((resolve) => {
      if (w.isDead()) return resolve();
      const t = setTimeout(() => { w.process.kill('SIGKILL'); resolve(); }, deadline);
      w.once('exit', () => { clearTimeout(t); resolve(); });
      try { w.send({ type: 'shutdown' } satisfies ToWorker); } catch { /* already gone */ }
    })));
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());

  for (let i = 0; i < n; i++) fork();

  try {
    await started;
  } catch (err) {
    shuttingDown = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGKILL');
    throw err;
  }

  const reload = reloader(async () => {
    const next = await loadForReload(opts.configPath, log);
    if (next === null) return;
    if (workerCount(next) !== n) log.warn('changing server.workers needs a restart; other changes are applied');
    cfg = next;
    generation++;
    log.info({ generation }, 'configuration validated; sending it to the workers');
    // One worker at a time: a listener a reload replaces closes its port in that worker before the new
    // one listens, and if every worker did so at once the primary would close the shared listening socket,
    // resetting the connections waiting in its accept queue. Staggered, another worker always listens.
    for (const w of Object.values(cluster.workers ?? {})) {
      if (w === undefined || w.isDead()) continue;
      await new Promise<void>((resolve) => {
        const done = () => { clearTimeout(t); acks.delete(w.id); w.off('exit', done); resolve(); };
        const t = setTimeout(done, RELOAD_ACK_TIMEOUT_MS);
        acks.set(w.id, done);
        w.once('exit', done);
        sendConfig(w);
      });
    }
  });
  process.on('SIGHUP', reload);
  if (!stopping && opts.config.server?.watchConfig !== false) watcher = watchConfig(opts.configPath, reload);
}
