// Creates the configured state store: memory (default; in a cluster worker it is the primary's store,
// reached over IPC) or redis. See docs/state.md.
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

export function createStateStore(cfg: StateConfig | undefined, opts: StateStoreOptions = {}): StateStore {
  if (cfg?.type === 'redis') return new RedisStateStore(cfg, { logger: opts.logger ?? createLogger() });
  // A cluster worker never keeps its own copy: the limit or replay check must hold for the whole node.
  if (cluster.isWorker && process.send !== undefined) return new IpcStateStore(workerStateChannel());
  return new LocalMemoryStore();
}
