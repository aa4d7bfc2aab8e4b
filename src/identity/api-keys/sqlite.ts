// SQLite key store (better-sqlite3): the embedded default, one file shared by every worker of a node and
// by the CLI. WAL mode lets workers read while the CLI writes; writers wait up to busyTimeoutMs for each
// other. Change detection is PRAGMA data_version, which moves whenever another connection commits, so an
// idle poll costs one pragma and no query.
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { SQLITE_MIGRATIONS } from './migrations.js';
import { sqlKeyStore, type KeyStore, type SqlExecutor, type SqlTx } from './store.js';

type Db = Database.Database;
type Statement = Database.Statement;

export interface SqliteStoreOptions {
  /** how long a writer waits for another writer's lock (default 5 s) */
  busyTimeoutMs?: number;
  /** refuse to create a missing file (CLI reads: a mistyped path must not look like an empty store) */
  mustExist?: boolean;
}

/** Opens (creating the file and its schema if needed) and migrates a SQLite key store. */
export function openSqliteKeyStore(path: string, opts: SqliteStoreOptions = {}): KeyStore {
  const fresh = !existsSync(path);
  if (fresh && opts.mustExist === true) throw new Error(`no key store at ${path} (it is created by the first \`keys create\` or \`consumers create\`)`);
  mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path, { timeout: opts.busyTimeoutMs ?? 5000 });
  try {
    // The file holds key hashes and consumer data: readable by the gateway's user only.
    if (fresh) chmodSync(path, 0o600);
    try {
      db.pragma('journal_mode = WAL');
    } catch {
      // another process is switching the same file to WAL right now; it persists in the file either way
    }
    db.pragma('foreign_keys = ON');
    db.pragma('synchronous = NORMAL');
    migrate(db);
  } catch (err) {
    db.close();
    throw err;
  }
  return sqlKeyStore(new SqliteExecutor(db, path));
}

function migrate(db: Db): void {
  const run = db.transaction(() => {
    db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)');
    const have = new Set(db.prepare('SELECT version FROM schema_migrations').pluck().all() as number[]);
    const known = SQLITE_MIGRATIONS.map((m) => m.version);
    const newer = [...have].filter((v) => !known.includes(v));
    if (newer.length > 0) throw new Error(`the key store has schema version ${Math.max(...newer)}, newer than this Portcullis knows (${Math.max(...known)}); upgrade Portcullis`);
    for (const m of SQLITE_MIGRATIONS) {
      if (have.has(m.version)) continue;
      for (const s of m.statements) db.exec(s);
      db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(m.version, Date.now());
    }
  });
  // IMMEDIATE: two workers starting together take the write lock in turn; the second sees the first's work.
  run.immediate();
}

const toParam = (v: unknown): unknown => (typeof v === 'boolean' ? (v ? 1 : 0) : v === undefined ? null : v);

class SqliteExecutor implements SqlExecutor {
  readonly description: string;
  private readonly statements = new Map<string, Statement>();
  private readonly dataVersion: Statement;
  private lastDataVersion = -1;
  /** data_version does not move for this connection's own commits */
  private wroteSinceCheck = false;
  /** one transaction at a time on this connection (the awaits inside one would otherwise interleave) */
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  private readonly tx: SqlTx = {
    all: async <T>(sql: string, params: readonly unknown[] = []): Promise<T[]> => {
      const st = this.prepare(sql);
      const p = params.map(toParam);
      if (st.reader) return st.all(...p) as T[];
      st.run(...p);
      return [];
    },
  };

  constructor(private readonly db: Db, path: string) {
    this.description = `sqlite:${path}`;
    this.dataVersion = db.prepare('PRAGMA data_version').pluck();
  }

  table(name: string): string { return name; }

  private prepare(sql: string): Statement {
    let st = this.statements.get(sql);
    if (st === undefined) {
      st = this.db.prepare(sql);
      this.statements.set(sql, st);
    }
    return st;
  }

  private serial<T>(begin: string, fn: (tx: SqlTx) => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      if (this.closed) throw new Error('key store is closed');
      this.db.exec(begin);
      try {
        const out = await fn(this.tx);
        this.db.exec('COMMIT');
        return out;
      } catch (err) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw err;
      }
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => undefined);
    return p;
  }

  write<T>(fn: (tx: SqlTx) => Promise<T>): Promise<T> {
    return this.serial('BEGIN IMMEDIATE', async (tx) => {
      const out = await fn(tx);
      this.wroteSinceCheck = true;
      return out;
    });
  }

  read<T>(fn: (tx: SqlTx) => Promise<T>): Promise<T> {
    return this.serial('BEGIN', fn);
  }

  async announce(): Promise<void> { /* readers poll data_version */ }

  mayHaveChanged(): boolean {
    if (this.closed) return false;
    const v = this.dataVersion.get() as number;
    if (v === this.lastDataVersion && !this.wroteSinceCheck) return false;
    this.lastDataVersion = v;
    this.wroteSinceCheck = false;
    return true;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue;
    this.db.close();
  }
}
