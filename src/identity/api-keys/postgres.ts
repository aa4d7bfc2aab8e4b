// PostgreSQL key store: the store for several nodes. Same tables as SQLite, in their own schema (default
// `portcullis`). Every write transaction sends NOTIFY on a channel named after the schema; gateway
// processes LISTEN on a dedicated connection and refresh at once, and still poll the revision every
// refreshMs in case a notification is lost with a dropped connection.
import pg from 'pg';
import { postgresMigrations } from './migrations.js';
import { sqlKeyStore, type KeyStore, type SqlExecutor, type SqlTx } from './store.js';

/** default for queryTimeoutMs: a failed query is retried on the index's next tick */
const QUERY_TIMEOUT_MS = 10_000;

const SCHEMA_NAME = /^[a-z_][a-z0-9_]*$/;
/** between attempts to re-establish a lost LISTEN connection */
const RELISTEN_MS = 2000;

export interface PostgresStoreOptions {
  url: string;
  schema?: string;
  /** connection problems of the background LISTEN connection and idle pool clients (never thrown) */
  onError?: (err: Error) => void;
  /** longest a query may take before it fails (default 10 s) */
  queryTimeoutMs?: number;
}

/** `postgres://user:pw@host:5432/db?x` → `postgres://host:5432/db (schema s)`: no credentials in messages. */
export function describePostgres(url: string, schema: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname} (schema ${schema})`;
  } catch {
    return `postgres (schema ${schema})`;
  }
}

export function channelName(schema: string): string {
  return `portcullis_keys_${schema}`;
}

/** Connects, creates the schema and migrates it (under an advisory lock, so nodes starting together take turns). */
export async function openPostgresKeyStore(opts: PostgresStoreOptions): Promise<KeyStore> {
  const schema = opts.schema ?? 'portcullis';
  if (!SCHEMA_NAME.test(schema)) throw new Error(`invalid PostgreSQL schema name ${JSON.stringify(schema)} (lower-case letters, digits and _)`);
  const onError = opts.onError ?? (() => undefined);
  // query_timeout: a query that never returns (a hung server, a lost packet) must fail, or the index's
  // refresh would wait forever and no later revocation would arrive; keepAlive notices dead peers.
  const pool = new pg.Pool({ connectionString: opts.url, max: 2, idleTimeoutMillis: 30_000, connectionTimeoutMillis: 5000, query_timeout: opts.queryTimeoutMs ?? QUERY_TIMEOUT_MS, keepAlive: true });
  // An idle client losing its connection emits here; without a listener it would crash the process.
  pool.on('error', onError);
  try {
    await migrate(pool, schema);
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }
  return sqlKeyStore(new PostgresExecutor(pool, schema, opts.url, onError));
}

async function migrate(pool: pg.Pool, schema: string): Promise<void> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`portcullis-key-store:${schema}`]);
    // DDL only when something is missing: a gateway whose database user may only read and write the
    // tables (no CREATE) starts fine on a store that is up to date.
    const exists = (await c.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [`${schema}.schema_migrations`])).rows[0]?.t != null;
    if (!exists) {
      await c.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      await c.query(`CREATE TABLE ${schema}.schema_migrations (version integer PRIMARY KEY, applied_at bigint NOT NULL)`);
    }
    const have = new Set((await c.query<{ version: number }>(`SELECT version FROM ${schema}.schema_migrations`)).rows.map((r) => r.version));
    const all = postgresMigrations(schema);
    const known = all.map((m) => m.version);
    const newer = [...have].filter((v) => !known.includes(v));
    if (newer.length > 0) throw new Error(`the key store has schema version ${Math.max(...newer)}, newer than this Portcullis knows (${Math.max(...known)}); upgrade Portcullis`);
    for (const m of all) {
      if (have.has(m.version)) continue;
      for (const s of m.statements) await c.query(s);
      await c.query(`INSERT INTO ${schema}.schema_migrations (version, applied_at) VALUES ($1, $2)`, [m.version, Date.now()]);
    }
    await c.query('COMMIT');
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    c.release();
  }
}

/** `?` → `$1, $2, ...` (the store's SQL has no `?` anywhere else). */
function placeholders(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

class PostgresExecutor implements SqlExecutor {
  readonly description: string;
  private readonly channel: string;
  private listener: pg.Client | undefined;
  private listening = false;
  private lastListenAttempt = 0;
  private onNotify: (() => void) | undefined;
  private closed = false;

  constructor(private readonly pool: pg.Pool, private readonly schema: string, private readonly url: string, private readonly onError: (err: Error) => void) {
    this.description = describePostgres(url, schema);
    this.channel = channelName(schema);
  }

  table(name: string): string { return `${this.schema}.${name}`; }

  private async inTx<T>(begin: string, fn: (tx: SqlTx) => Promise<T>): Promise<T> {
    if (this.closed) throw new Error('key store is closed');
    const c = await this.pool.connect();
    const tx: SqlTx = {
      all: async <R>(sql: string, params: readonly unknown[] = []): Promise<R[]> => (await c.query(placeholders(sql), params as unknown[])).rows as R[],
    };
    let broken: Error | undefined;
    try {
      await c.query(begin);
      const out = await fn(tx);
      await c.query('COMMIT');
      return out;
    } catch (err) {
      await c.query('ROLLBACK').catch((e: Error) => { broken = e; });
      throw err;
    } finally {
      c.release(broken);
    }
  }

  write<T>(fn: (tx: SqlTx) => Promise<T>): Promise<T> { return this.inTx('BEGIN', fn); }

  read<T>(fn: (tx: SqlTx) => Promise<T>): Promise<T> { return this.inTx('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', fn); }

  async announce(tx: SqlTx, revision: number): Promise<void> {
    // Delivered at commit, to every LISTEN-ing gateway process.
    await tx.all('SELECT pg_notify(?, ?)', [this.channel, String(revision)]);
  }

  /** Also keeps the LISTEN connection alive: re-established (at most every RELISTEN_MS) when it was lost. */
  mayHaveChanged(): boolean {
    if (this.onNotify !== undefined && !this.listening && Date.now() - this.lastListenAttempt >= RELISTEN_MS) void this.listen();
    return true;
  }

  /** Calls `fn` on every change notification; resolves once LISTEN is in place (or failed: the poll covers). */
  watch(fn: () => void): Promise<void> {
    this.onNotify = fn;
    return this.listen();
  }

  private async listen(): Promise<void> {
    if (this.closed || this.listening) return;
    this.lastListenAttempt = Date.now();
    this.listening = true;
    const c = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 5000, keepAlive: true });
    this.listener = c;
    const lost = (err?: Error): void => {
      if (this.listener !== c) return;
      this.listener = undefined;
      this.listening = false;
      if (err !== undefined && !this.closed) this.onError(err);
      c.end().catch(() => undefined);
      // the next poll notices and reconnects; changes made meanwhile are found by the revision poll
    };
    c.on('error', lost);
    c.on('end', () => lost());
    c.on('notification', (m) => { if (m.channel === this.channel) this.onNotify?.(); });
    try {
      await c.connect();
      await c.query(`LISTEN ${this.channel}`);
      if (this.closed) await c.end();
    } catch (err) {
      lost(err as Error);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const l = this.listener;
    this.listener = undefined;
    await Promise.allSettled([l?.end(), this.pool.end()]);
  }
}

