// IPC between the cluster primary (run.ts) and its workers (worker.ts).
import type { GatewayConfig } from '../config/schema.js';
import type { StateReplyMessage, StateRequestMessage } from '../state/cluster.js';
import type { CachePurgeMessage } from '../services/cache-purge.js';
import type { MetricsReplyMessage, MetricsRequestMessage } from '../observability/node-metrics.js';

export type ToWorker =
  | { type: 'config'; generation: number; config: GatewayConfig; baseDir: string }
  | { type: 'shutdown' }
  /** answers to a worker's state store operations (memory store in cluster mode, src/state/cluster.ts) */
  | StateReplyMessage
  /** a cache purge another worker received on its admin endpoint (src/services/cache-purge.ts) */
  | CachePurgeMessage
  /** the node's merged metrics for a scrape this worker received (src/observability/node-metrics.ts) */
  | MetricsReplyMessage;

export type ToPrimary =
  | { type: 'hello' }
  | { type: 'ready'; generation: number }
  | { type: 'reloaded'; generation: number }
  | { type: 'reload-failed'; generation: number; error: string }
  | { type: 'start-failed'; error: string }
  /** state store operations for the primary's node-wide memory store (src/state/cluster.ts) */
  | StateRequestMessage
  /** a cache purge to relay to every other worker */
  | CachePurgeMessage
  /** a scrape arrived on this worker's status port: merge every worker's metrics */
  | MetricsRequestMessage;
