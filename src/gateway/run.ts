// Process model for `portcullis start`: one process, or a node:cluster primary with N workers.
// The primary never serves traffic: it validates configuration, supervises workers (restarting crashed
// ones), fans out reloads and coordinates graceful shutdown. Each worker runs a Gateway.
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { watch, type FSWatcher } from 'node:fs';
import { dirname, basename } from 'node:path';
import type { GatewayConfig } from '../config/schema.js';
import { loadConfigFile, formatIssue } from '../config/load.js';
import { Gateway } from './gateway.js';
import { createLogger, type Logger } from '../observability/logger.js';

export interface RunOptions {
  configPath: string;
  config: GatewayConfig;
}

type PrimaryMessage = { type: 'reload' } | { type: 'shutdown' };
type WorkerMessage = { type: 'ready' } | { type: 'reloaded'; generation: number } | { type: 'reload-failed'; errors: string[] };

export function workerCount(cfg: GatewayConfig): number {
  const w = cfg.server?.workers ?? 1;
  return w === 'auto' ? Math.max(1, availableParallelism()) : w;
}

export async function runGateway(opts: RunOptions): Promise<void> {
  const logger = createLogger();
  const n = workerCount(opts.config);
  if (cluster.isWorker) return runWorker(opts, logger);
  if (n <= 1) return runSingle(opts, logger);
  return runPrimary(opts, n, logger);
}

/** Reads, validates and compiles the file again; logs every error and returns null if it is not usable. */
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

function logListening(gw: Gateway, cfg: GatewayConfig, logger: Logger): void {
  for (const l of cfg.listeners) {
    const a = gw.address(l.name);
    logger.info({ listener: l.name, address: a.address, port: a.port }, `listening on ${a.address}:${a.port}`);
  }
  const s = gw.statusAddress();
  if (s) logger.info({ listener: 'status', address: s.address, port: s.port }, `status on ${s.address}:${s.port}`);
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

async function runSingle(opts: RunOptions, logger: Logger): Promise<void> {
  const gw = await Gateway.start(opts.config, { logger });
  let cfg = opts.config;
  logListening(gw, cfg, logger);
  const reload = reloader(async () => {
    const next = await loadForReload(opts.configPath, logger);
    if (next === null) return;
    try {
      await gw.reload(next);
      cfg = next;
      logger.info({ generation: gw.runtime.generation }, 'configuration reloaded');
    } catch (err) {
      logger.error({ err: (err as Error).message }, 'configuration rejected at compile; keeping the running one');
    }
  });
  process.on('SIGHUP', reload);
  const watcher = opts.config.server?.watchConfig !== false ? watchConfig(opts.configPath, reload) : undefined;
  const stop = once(async () => {
    logger.info('shutting down: draining in-flight requests');
    watcher?.close();
    await gw.close(cfg.server?.shutdownTimeoutMs ?? 30_000);
    logger.info('stopped');
    process.exit(0);
  });
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

async function runWorker(opts: RunOptions, logger: Logger): Promise<void> {
  const log = logger.child({ worker: cluster.worker?.id });
  const gw = await Gateway.start(opts.config, { logger: log });
  let cfg = opts.config;
  logListening(gw, cfg, log);
  const send = (m: WorkerMessage) => { if (process.connected) process.send?.(m); };
  const reload = reloader(async () => {
    const next = await loadForReload(opts.configPath, log);
    if (next === null) return send({ type: 'reload-failed', errors: ['invalid configuration'] });
    try {
      await gw.reload(next);
      cfg = next;
      send({ type: 'reloaded', generation: gw.runtime.generation });
    } catch (err) {
      log.error({ err: (err as Error).message }, 'configuration rejected at compile; keeping the running one');
      send({ type: 'reload-failed', errors: [(err as Error).message] });
    }
  });
  const stop = once(async () => {
    await gw.close(cfg.server?.shutdownTimeoutMs ?? 30_000);
    process.exit(0);
  });
  process.on('message', (m: PrimaryMessage) => {
    if (m?.type === 'reload') reload();
    else if (m?.type === 'shutdown') void stop();
  });
  // The primary coordinates signals; a Ctrl-C reaches the whole process group, so drain on it too.
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('SIGHUP', () => { /* the primary fans reloads out */ });
  send({ type: 'ready' });
}

async function runPrimary(opts: RunOptions, n: number, logger: Logger): Promise<void> {
  let cfg = opts.config;
  let shuttingDown = false;
  const crashes: number[] = [];
  const log = logger.child({ role: 'primary' });
  log.info({ workers: n }, `starting ${n} workers`);

  const fork = (): Worker => {
    const w = cluster.fork();
    w.on('message', (m: WorkerMessage) => {
      if (m.type === 'reloaded') log.info({ worker: w.id, generation: m.generation }, 'worker reloaded');
      else if (m.type === 'reload-failed') log.error({ worker: w.id, errors: m.errors }, 'worker kept its configuration');
    });
    return w;
  };
  cluster.on('exit', (w, code, signal) => {
    if (shuttingDown) return;
    log.error({ worker: w.id, code, signal }, 'worker died; starting a replacement');
    const now = Date.now();
    crashes.push(now);
    while (crashes.length > 0 && crashes[0]! < now - 10_000) crashes.shift();
    // A worker that dies at once every time (bad environment) must not become a fork bomb.
    const delay = crashes.length > 5 ? 1000 : 0;
    setTimeout(() => { if (!shuttingDown) fork(); }, delay);
  });
  for (let i = 0; i < n; i++) fork();

  const reload = reloader(async () => {
    const next = await loadForReload(opts.configPath, log);
    if (next === null) return;
    if (workerCount(next) !== n) log.warn('changing server.workers needs a restart; other changes are applied');
    cfg = next;
    for (const w of Object.values(cluster.workers ?? {})) w?.send({ type: 'reload' } satisfies PrimaryMessage);
  });
  process.on('SIGHUP', reload);
  const watcher = opts.config.server?.watchConfig !== false ? watchConfig(opts.configPath, reload) : undefined;

  const stop = once(async () => {
    shuttingDown = true;
    watcher?.close();
    log.info('shutting down: draining workers');
    const deadline = (cfg.server?.shutdownTimeoutMs ?? 30_000) + 5000;
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
    await Promise.all(workers.map((w) => new Promise<void>((resolve) => {
      if (w.isDead()) return resolve();
      const t = setTimeout(() => { w.process.kill('SIGKILL'); resolve(); }, deadline);
      w.once('exit', () => { clearTimeout(t); resolve(); });
      try { w.send({ type: 'shutdown' } satisfies PrimaryMessage); } catch { /* already gone */ }
    })));
    log.info('stopped');
    process.exit(0);
  });
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

function once(fn: () => Promise<void>): () => void {
  let called = false;
  return () => {
    if (called) return;
    called = true;
    void fn();
  };
}
