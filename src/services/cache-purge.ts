// The admin cache purge as the operator surface sees it: what a purge is, where a generation's purge
// targets are registered, and the cluster IPC that spreads a purge to every worker. The cache stage
// (src/stages/cache) implements the targets and registers them while a generation compiles; the status
// listener (src/status/status-server.ts, POST /admin/cache/purge) and the cluster primary
// (src/gateway/run.ts) only use this module, so neither reaches into the stage.
//
// Purges in cluster mode: each worker keeps its own memory cache and the status listener is served by
// whichever worker accepts the connection, so that worker purges its own stores and asks the primary to
// relay the purge to every other worker:
//   worker → primary  { type: 'cache-purge', spec }      primary → other workers  { type: 'cache-purge', spec }
// (The Redis store is shared: purging it once is enough, and the relay repeats harmlessly.) The worker
// side that applies a relayed purge lives with the memory store (src/stages/cache/cluster.ts).
import cluster, { type Worker } from 'node:cluster';

export type PurgeSpec = { readonly key: string } | { readonly prefix: string };

/** A store the admin purge reaches (the cache stage's memory and Redis stores). */
export interface PurgeTarget {
  /** Removes the entries with this exact primary key (all variants), or whose key starts with the prefix. Resolves the number removed. */
  purge(spec: PurgeSpec): Promise<number>;
}

/** Where a generation keeps its purge targets: its ServiceScope (src/services/services.ts). */
export interface PurgeTargets { readonly purgeTargets: Set<PurgeTarget> }

/** Registers a store a generation's routes use (called by the cache stage while the generation compiles). */
export function registerPurgeTarget(scope: PurgeTargets, target: PurgeTarget): void {
  scope.purgeTargets.add(target);
}

/** The purge targets a generation's routes use (empty when no route caches). */
export function cacheStoresOf(scope: PurgeTargets): readonly PurgeTarget[] {
  return [...scope.purgeTargets];
}

/** Purges in every store of the generation; resolves the total removed. */
export async function purgeAll(scope: PurgeTargets, spec: PurgeSpec): Promise<number> {
  const counts = await Promise.all(cacheStoresOf(scope).map((s) => s.purge(spec)));
  return counts.reduce((a, b) => a + b, 0);
}

export interface CachePurgeMessage { readonly type: 'cache-purge'; readonly spec: PurgeSpec }

export function isCachePurgeMessage(m: unknown): m is CachePurgeMessage {
  if (typeof m !== 'object' || m === null || (m as { type?: unknown }).type !== 'cache-purge') return false;
  const spec = (m as { spec?: unknown }).spec;
  if (typeof spec !== 'object' || spec === null) return false;
  const s = spec as { key?: unknown; prefix?: unknown };
  return typeof s.key === 'string' || typeof s.prefix === 'string';
}

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
