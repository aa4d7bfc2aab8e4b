// The key store as seen by one gateway process: every consumer and key held in memory (so a request never
// waits on the database) and kept current by polling. Each poll is cheap when nothing changed (SQLite:
// PRAGMA data_version; PostgreSQL: one `SELECT revision`, and LISTEN/NOTIFY usually beats the poll) and
// fetches only rows whose revision is newer than the last one seen, so a revocation reaches every worker
// of every node within refreshMs plus one query.
//
// A failing refresh keeps the last good index (logged, at most every ERROR_LOG_MS) and never throws; the
// first load must succeed, or ready() rejects and the gateway does not start on a store it cannot read.
import type { Service } from '../../services/services.js';
import type { Logger } from '../../observability/logger.js';
import type { Consumer } from '../consumer.js';
import type { KeyStoreConfig } from '../schema.js';
import { DEFAULT_REFRESH_MS, openKeyStore } from './open.js';
import { hexOfHash, storeKeyRecord, type KeyRecord } from './records.js';
import type { ConsumerRow, KeyStore, StoreChanges } from './store.js';

const ERROR_LOG_MS = 30_000;

export class KeyStoreIndex implements Service {
  /** hex HMAC digest → key */
  private readonly keys = new Map<string, KeyRecord>();
  /** key id → hex digest (to replace a key whose row changed) */
  private readonly keyHex = new Map<string, string>();
  private readonly consumers = new Map<string, Consumer>();
  /** ids of imported keys (any state): while there is one, keys not in the pcl_ format are looked up */
  private readonly importedIds = new Set<string>();
  private store: KeyStore | undefined;
  private revision = 0;
  /** bumped on every applied change set: lets look-up caches in front of the index know they are stale */
  private appliedChanges = 0;
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;
  /** a change was announced (or a refresh failed) while a refresh ran: run another one */
  private again = false;
  /** skip the cheap change check next time (the last refresh failed after it said "changed") */
  private force = false;
  private failing = false;
  private lastErrorLog = 0;
  private suppressed = 0;
  private closed = false;
  private loaded = false;
  private readonly started: Promise<void>;
  readonly refreshMs: number;

  constructor(private readonly cfg: KeyStoreConfig, private readonly baseDir: string, private readonly logger: Logger) {
    this.refreshMs = cfg.refreshMs ?? DEFAULT_REFRESH_MS;
    this.started = this.start();
    // ready() hands the failure to whoever waits; nobody waiting must not crash the process
    this.started.catch(() => undefined);
  }

  ready(): Promise<void> { return this.started; }

  /** Sync, from memory. */
  key(hex: string): KeyRecord | undefined { return this.keys.get(hex); }

  /** Whether the store holds imported keys (`keys import`), which are not in the pcl_ format. */
  get hasImportedKeys(): boolean { return this.importedIds.size > 0; }

  /** Changes whenever the index changes (revocations, new keys, a recreated store). */
  get changeCount(): number { return this.appliedChanges; }

  consumer(id: string): Consumer | undefined { return this.consumers.get(id); }

  private async start(): Promise<void> {
    const store = await openKeyStore(this.cfg, this.baseDir, (err) => this.logError(err));
    if (this.closed) { await store.close(); return; }
    this.store = store;
    try {
      // Listen before the first load, so that no change between the load and the LISTEN goes unnoticed.
      await store.watch?.(() => { void this.refresh(); });
      store.mayHaveChanged();
      const first = await store.changesSince(0);
      if (first !== null) this.apply(first);
      this.loaded = true;
    } catch (err) {
      this.store = undefined;
      await store.close().catch(() => undefined);
      throw new Error(`key store ${store.description}: cannot load the keys: ${(err as Error).message}`);
    }
    if (this.closed) return;
    this.schedule();
    this.logger.info({ keyStore: store.description, keys: this.keys.size, consumers: this.consumers.size }, 'API key store loaded');
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => { void this.tick(); }, this.refreshMs);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    try {
      const store = this.store;
      if (store !== undefined && (this.force || store.mayHaveChanged())) await this.refresh();
    } catch (err) {
      this.force = true;
      this.logError(err as Error);
    }
    this.schedule();
  }

  /** Fetches and applies what changed; concurrent calls share one run (plus one more if asked meanwhile). */
  refresh(): Promise<void> {
    // before the first load completes, the load itself (or the first poll after it) picks changes up
    if (!this.loaded) return Promise.resolve();
    if (this.refreshing !== undefined) {
      this.again = true;
      return this.refreshing;
    }
    const run = async (): Promise<void> => {
      do {
        this.again = false;
        const store = this.store;
        if (store === undefined || this.closed) return;
        try {
          const changes = await store.changesSince(this.revision);
          this.force = false;
          if (changes !== null && !this.closed) this.apply(changes);
          if (this.failing) {
            this.failing = false;
            this.logger.info({ keyStore: store.description }, 'API key store reachable again');
          }
        } catch (err) {
          this.force = true;
          this.logError(err as Error);
          return;
        }
      } while (this.again);
    };
    this.refreshing = run().finally(() => { this.refreshing = undefined; });
    return this.refreshing;
  }

  private apply(ch: StoreChanges): void {
    if (ch.revision < this.revision) {
      // the store was recreated: start over from what it holds now
      this.keys.clear();
      this.keyHex.clear();
      this.consumers.clear();
      this.importedIds.clear();
    }
    for (const c of ch.consumers) {
      if (c.deletedAt !== null) this.consumers.delete(c.id);
      else {
        if (c.damaged !== undefined) this.logger.warn({ consumer: c.id, columns: c.damaged }, 'API key store: a consumer row has unreadable columns; they count as empty');
        this.consumers.set(c.id, consumerOf(c));
      }
    }
    for (const k of ch.keys) {
      const prev = this.keyHex.get(k.id);
      if (prev !== undefined) this.keys.delete(prev);
      const rec = storeKeyRecord(k);
      if (k.imported && rec !== undefined) this.importedIds.add(k.id);
      else this.importedIds.delete(k.id);
      if (rec === undefined) {
        this.keyHex.delete(k.id);
        this.logger.warn({ keyId: k.id, ...(k.damaged !== undefined ? { columns: k.damaged } : {}) }, 'API key store: a key row is damaged (hash or a JSON column); the key cannot be used');
        continue;
      }
      const hex = hexOfHash(k.hash);
      this.keys.set(hex, rec);
      this.keyHex.set(k.id, hex);
    }
    this.revision = ch.revision;
    this.appliedChanges++;
  }

  private logError(err: Error): void {
    if (this.closed) return;
    this.failing = true;
    const now = Date.now();
    if (now - this.lastErrorLog < ERROR_LOG_MS) { this.suppressed++; return; }
    this.lastErrorLog = now;
    const suppressed = this.suppressed;
    this.suppressed = 0;
    this.logger.error({ keyStore: this.store?.description, err: err.message, ...(suppressed > 0 ? { suppressed } : {}) },
      'API key store refresh failed; serving the last loaded keys');
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.started.catch(() => undefined);
    await this.refreshing;
    const s = this.store;
    this.store = undefined;
    await s?.close();
  }
}

const EMPTY: readonly string[] = Object.freeze([]);

function consumerOf(c: ConsumerRow): Consumer {
  return Object.freeze({
    id: c.id,
    roles: c.roles.length === 0 ? EMPTY : Object.freeze([...c.roles]),
    scopes: c.scopes.length === 0 ? EMPTY : Object.freeze([...c.scopes]),
    metadata: Object.freeze({ ...c.metadata }),
  });
}
