// Long-lived services that configuration generations share: API key stores (an open database and its
// in-memory index), JWKS caches, introspection clients, the shared state store. A reload must not
// reopen a database or forget fetched keys when their configuration did not change, so compile asks a
// ServiceScope for each service by a key derived from its configuration: an existing one is reused, a
// missing one created. The gateway awaits the new ones' ready() before it swaps generations, and closes
// the services the new generation no longer uses once the old generation has drained.
import type { PurgeTarget } from './cache-purge.js';

export interface Service {
  /** Resolves once the service can answer (e.g. the key index is loaded); rejects if it cannot start. */
  ready(): Promise<void>;
  close(): Promise<void>;
}

export class ServicePool {
  private readonly live = new Map<string, Service>();

  /** scopes of generations that are live or still draining */
  private readonly generations = new Set<ServiceScope>();

  scope(): ServiceScope { return new ServiceScope(this.live, this.generations); }

  /**
   * A generation has drained: close every service that no remaining generation uses. (Several reloads
   * in a row leave several generations draining; a service stays open while any of them uses it.)
   */
  async release(done: ServiceScope): Promise<void> {
    this.generations.delete(done);
    const drop: Service[] = [];
    for (const [k, s] of this.live) {
      let used = false;
      for (const g of this.generations) if (g.used.has(k)) { used = true; break; }
      if (!used) { drop.push(s); this.live.delete(k); }
    }
    await Promise.allSettled(drop.map((s) => s.close()));
  }

  async closeAll(): Promise<void> {
    const all = [...this.live.values()];
    this.live.clear();
    await Promise.allSettled(all.map((s) => s.close()));
  }
}

export class ServiceScope {
  readonly used = new Set<string>();
  /**
   * Cache stores this generation's routes use: what POST /admin/cache/purge reaches (registered by the
   * cache stage at compile time, see src/services/cache-purge.ts). Per generation, so a purge never
   * touches a store only an older, draining generation still holds.
   */
  readonly purgeTargets = new Set<PurgeTarget>();
  /** services this scope created (not yet in the pool until commit) */
  private readonly created = new Map<string, Service>();
  /** per-generation values (see local()) */
  private readonly locals = new Map<GenerationLocal<unknown>, unknown>();

  constructor(private readonly live: Map<string, Service>, private readonly generations: Set<ServiceScope>) {}

  /** The service for `key`, reused from a previous generation or created now. */
  use<T extends Service>(key: string, create: () => T): T {
    this.used.add(key);
    const have = this.live.get(key) ?? this.created.get(key);
    if (have !== undefined) return have as T;
    const s = create();
    this.created.set(key, s);
    return s;
  }

  /**
   * The value of `key` for this generation, created on first use: a table shared by the generation's
   * routes and dropped with it (e.g. the JWT verifier per issuer). Unlike use(), nothing is kept for the
   * next generation and nothing is closed.
   */
  local<T>(key: GenerationLocal<T>, create: () => T): T {
    if (this.locals.has(key)) return this.locals.get(key) as T;
    const v = create();
    this.locals.set(key, v);
    return v;
  }

  /** Waits until every service this scope created is ready; on failure closes them and rethrows. */
  async ready(): Promise<void> {
    try {
      await Promise.all([...this.created.values()].map((s) => s.ready()));
    } catch (err) {
      await this.abandon();
      throw err;
    }
  }

  /** The generation goes live: its new services join the pool. */
  commit(): void {
    for (const [k, s] of this.created) this.live.set(k, s);
    this.created.clear();
    this.generations.add(this);
  }

  /** The generation was rejected: close what it created. */
  async abandon(): Promise<void> {
    const all = [...this.created.values()];
    this.created.clear();
    await Promise.allSettled(all.map((s) => s.close()));
  }
}

/** A typed key for ServiceScope.local(); define one per table as a module constant. */
export class GenerationLocal<T> {
  /** (phantom: ties the key to its value type) */
  declare private readonly _type: T;
  constructor(readonly name: string) {}
}

/** A stable key for a service from the configuration that defines it. */
export function serviceKey(kind: string, ...parts: unknown[]): string {
  return JSON.stringify([kind, ...parts]);
}
