// The worker side of relayed cache purges (the protocol and the primary's relay: src/services/cache-purge.ts).
// A relayed purge arrives on the worker's IPC channel, which is one per process, so the memory stores it
// must clear are tracked per process: every generation's memory stores, until the pool closes them.
import cluster from 'node:cluster';
import { isCachePurgeMessage, type PurgeTarget } from '../../services/cache-purge.js';

/** memory stores alive in this process (all gateways): what a relayed purge clears */
const liveStores = new Set<PurgeTarget>();
let listening = false;

/** Tracks a memory store for relayed purges; in a worker, listens for them (one listener per process). */
export function trackStore(store: PurgeTarget): void {
  liveStores.add(store);
  if (listening || !cluster.isWorker) return;
  listening = true;
  process.on('message', (m: unknown) => {
    if (!isCachePurgeMessage(m)) return;
    for (const s of liveStores) void s.purge(m.spec).catch(() => undefined);
  });
}

export function untrackStore(store: PurgeTarget): void { liveStores.delete(store); }
