// Purges in cluster mode. Each worker keeps its own memory cache and the status listener (where the admin
// purge call lands) is served by whichever worker accepts the connection, so that worker purges its own
// stores and asks the primary to relay the purge to every other worker:
//   worker → primary  { type: 'cache-purge', spec }      primary → other workers  { type: 'cache-purge', spec }
// (The Redis store is shared: purging it once is enough, and the relay repeats harmlessly.)
import cluster, { type Worker } from 'node:cluster';
import type { CacheStore, PurgeSpec } from './store.js';

export interface CachePurgeMessage { readonly type: 'cache-purge'; readonly spec: PurgeSpec }

/** memory stores alive in this process (all gateways): what a relayed purge clears */
const liveStores = new Set<CacheStore>();
let listening = false;

export function isCachePurgeMessage(m: unknown): m is CachePurgeMessage {
  if (typeof m !== 'object' || m === null || (m as { type?: unknown }).type !== 'cache-purge') return false;
  const spec = (m as { spec?: unknown }).spec;
  if (typeof spec !== 'object' || spec === null) return false;
  const s = spec as { key?: unknown; prefix?: unknown };
  return typeof s.key === 'string' || typeof s.prefix === 'string';
}

/** Tracks a memory store for relayed purges; in a worker, listens for them (one listener per process). */
export function trackStore(store: CacheStore): void {
  liveStores.add(store);
  if (listening || !cluster.isWorker) return;
  listening = true;
  process.on('message', (m: unknown) => {
    if (!isCachePurgeMessage(m)) return;
    for (const s of liveStores) void s.purge(m.spec).catch(() => undefined);
  });
}

export function untrackStore(store: CacheStore): void { liveStores.delete(store); }

/** Worker side of an admin purge: ask the primary to relay it to the other workers. False when not a cluster worker. */
export function broadcastPurge(spec: PurgeSpec): boolean {
  if (!cluster.isWorker || process.send === undefined || !process.connected) return false;
  try { process.send({ type: 'cache-purge', spec } satisfies CachePurgeMessage); return true; } catch { return false; }
}

/**
 * Primary side (src/gateway/run.ts): relays a worker's purge to every other worker. Returns false when
 * `m` is not a purge message.
 */
export function relayCachePurge(from: Worker, m: unknown, workers: Iterable<Worker | undefined>): boolean {
  if (!isCachePurgeMessage(m)) return false;
  const msg: CachePurgeMessage = { type: 'cache-purge', spec: 'key' in m.spec ? { key: m.spec.key } : { prefix: m.spec.prefix } };
  for (const w of workers) {
    if (w === undefined || w === from || w.isDead()) continue;
    try { w.send(msg); } catch { /* gone */ }
  }
  return true;
}
