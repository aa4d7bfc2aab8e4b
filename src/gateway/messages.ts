// IPC between the cluster primary (run.ts) and its workers (worker.ts).
import type { GatewayConfig } from '../config/schema.js';

export type ToWorker =
  | { type: 'config'; generation: number; config: GatewayConfig; baseDir: string }
  | { type: 'shutdown' };

export type ToPrimary =
  | { type: 'hello' }
  | { type: 'ready'; generation: number }
  | { type: 'reloaded'; generation: number }
  | { type: 'reload-failed'; generation: number; error: string }
  | { type: 'start-failed'; error: string };
