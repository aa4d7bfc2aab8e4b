// Creates the configured state store: memory (default; in a cluster worker it is the primary's store,
// reached over IPC), redis or redis-cluster. See docs/state.md.
import cluster from 'node:cluster';
import type { StateConfig } from './schema.js';
import type { StateStore } from './types.js';
import { LocalMemoryStore } from './memory.js';
import { IpcStateStore, workerStateChannel } from './cluster.js';
import { RedisStateStore } from './redis.js';
import { createLogger, type Logger } from '../observability/logger.js';

export type { StateStore } from './types.js';

export interface StateStoreOptions {
  /** where Redis connection problems are reported (default: a new stderr logger) */
  logger?: Logger;
}

/** Set by the cluster primary on every worker it forks: how many workers the node runs. */
export const NODE_WORKERS_ENV = 'PORTCULLIS_NODE_WORKERS';

/**
 * Where the memory store lives. A worker that shares the node with other workers asks the primary (the
 * limit or replay check must hold for the whole node); a process alone on its node — no cluster, or the
 * only worker — keeps it in-process, which saves an IPC round trip per request (measured: the one-worker
 * rate-limit bench row spent most of its extra CPU on it). A replaced single worker starts with empty
 * counters, as a restarted single-process gateway does. Unknown worker count: assume several.
 */
export function memoryStorePlacement(isWorker: boolean, hasIpc: boolean, nodeWorkers: string | undefined): 'local' | 'primary' {
  if (!isWorker || !hasIpc) return 'local';
  return nodeWorkers === '1' ? 'local' : 'primary';
}

export function createStateStore(cfg: StateConfig | undefined, opts: StateStoreOptions = {}): StateStore {
  if (cfg?.type === 'redis' || cfg?.type === 'redis-cluster') return new RedisStateStore(cfg, { logger: opts.logger ?? createLogger() });
  if (memoryStorePlacement(cluster.isWorker, process.send !== undefined, process.env[NODE_WORKERS_ENV]) === 'primary') return new IpcStateStore(workerStateChannel());
  return new LocalMemoryStore();
}
