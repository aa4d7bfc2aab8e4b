// The key store: consumers and hashed API keys in SQLite (one node) or PostgreSQL (several nodes), written
// by `portcullis keys`/`consumers` and read by every gateway process into its in-memory index
// (src/identity/api-keys/index-service.ts). The logic is written once over a small SQL executor; the two
// database modules only open connections, run transactions and translate placeholders.
import { randomBase62 } from './format.js';

export type MetadataValue = string | number | boolean;

export interface ConsumerRow {
  readonly id: string;
  readonly roles: readonly string[];
  readonly scopes: readonly string[];
  readonly metadata: Readonly<Record<string, MetadataValue>>;
  readonly createdAt: number;
  readonly updatedAt: number;
  /** soft delete, so readers see the change */
  readonly deletedAt: number | null;
  readonly revision: number;
  /** set when a JSON column could not be read: the field became empty (fewer rights, never more) */
  readonly damaged?: string;
}

export interface KeyRow {
  readonly id: string;
  readonly consumerId: string;
  /** `hmac-sha256:<hex>`; never shown by the CLI */
  readonly hash: string;
  /** last 4 characters of the key */
  readonly hint: string;
  readonly scopes: readonly string[] | null;
  readonly cidrs: readonly string[] | null;
  readonly origins: readonly string[] | null;
  readonly expiresAt: number | null;
  readonly enabled: boolean;
  readonly createdAt: number;
  readonly revokedAt: number | null;
  readonly rotatedFrom: string | null;
  /** imported from another gateway (`keys import`): not in the pcl_ format */
  readonly imported: boolean;
  readonly revision: number;
  /** set when a JSON column could not be read: the key is not used (a restriction must never fall away) */
  readonly damaged?: string;
}

export interface ConsumerInput {
  readonly id: string;
  readonly roles?: readonly string[];
  readonly scopes?: readonly string[];
  readonly metadata?: Readonly<Record<string, MetadataValue>>;
}

export interface NewKey {
  readonly consumerId: string;
  readonly hash: string;
  readonly hint: string;
  readonly scopes?: readonly string[] | null;
  readonly cidrs?: readonly string[] | null;
  readonly origins?: readonly string[] | null;
  readonly expiresAt?: number | null;
  readonly enabled?: boolean;
  readonly imported?: boolean;
}

export interface StoreChanges {
  readonly revision: number;
  readonly consumers: readonly ConsumerRow[];
  readonly keys: readonly KeyRow[];
}

export interface KeyStore {
  /** 'sqlite:/path' or 'postgres://host/db (schema s)': for messages, without credentials */
  readonly description: string;
  /** Everything with a revision above `since` (all rows for since = 0), or null when nothing changed. */
  changesSince(since: number): Promise<StoreChanges | null>;
  /**
   * Cheap check whether anything may have changed since the last changesSince (SQLite: PRAGMA data_version;
   * PostgreSQL: always true, the revision query is the check).
   */
  mayHaveChanged(): boolean;
  /** Push notification of changes, where the database has it (PostgreSQL LISTEN); resolves once listening. */
  watch?(fn: () => void): Promise<void>;
  listConsumers(): Promise<ConsumerRow[]>;
  getConsumer(id: string): Promise<ConsumerRow | undefined>;
  /** Creates a consumer (or brings back a deleted one); fails if it exists. */
  createConsumer(c: ConsumerInput): Promise<ConsumerRow>;
  /** Replaces the given fields of an existing consumer. */
  updateConsumer(c: ConsumerInput): Promise<ConsumerRow>;
  /** Soft-deletes the consumer and revokes its keys; returns how many keys were revoked. */
  deleteConsumer(id: string): Promise<number>;
  listKeys(consumerId?: string): Promise<KeyRow[]>;
  getKey(id: string): Promise<KeyRow | undefined>;
  /** Inserts a key; creates its consumer if there is none. */
  createKey(k: NewKey): Promise<KeyRow>;
  /** Revoked keys never work again. Revoking twice is not an error (returns the row). */
  revokeKey(id: string): Promise<KeyRow>;
  setKeyEnabled(id: string, enabled: boolean): Promise<KeyRow>;
  /**
   * A new key for the same consumer (restrictions from `next`), and the old key's expiry moved to
   * `oldExpiresAt` unless it already expires sooner. One transaction.
   */
  rotateKey(id: string, next: NewKey, oldExpiresAt: number): Promise<{ old: KeyRow; created: KeyRow }>;
  close(): Promise<void>;
}

/** A refused store operation (unknown id, duplicate, revoked key): the message is for the operator. */
export class KeyStoreError extends Error {
  override readonly name = 'KeyStoreError';
}

// ---------------------------------------------------------------- executor

export interface SqlTx {
  /** `?` placeholders; booleans, arrays and objects are converted by the executor */
  all<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]>;
}

export interface SqlExecutor {
  readonly description: string;
  /** qualified table name */
  table(name: 'consumers' | 'api_keys' | 'store_state'): string;
  /** A write transaction; writers are serialized. */
  write<T>(fn: (tx: SqlTx) => Promise<T>): Promise<T>;
  /** A read-only transaction over one consistent snapshot. */
  read<T>(fn: (tx: SqlTx) => Promise<T>): Promise<T>;
  /** Called inside a write transaction after the revision bump (PostgreSQL: NOTIFY). */
  announce(tx: SqlTx, revision: number): Promise<void>;
  mayHaveChanged(): boolean;
  watch?(fn: () => void): Promise<void>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------- row mapping

const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v));
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : num(v));
const DAMAGED = Symbol('damaged');

/** A JSON column of a row (text in SQLite, jsonb in PostgreSQL); DAMAGED instead of throwing. */
function jsonColumn(v: unknown): unknown {
  if (typeof v !== 'string') return v;
  try { return JSON.parse(v) as unknown; } catch { return DAMAGED; }
}

/** A string-list column: null stays null; anything but an array of strings is DAMAGED. */
function listColumn(v: unknown): readonly string[] | null | typeof DAMAGED {
  if (v === null || v === undefined) return null;
  const x = jsonColumn(v);
  return Array.isArray(x) && x.every((e) => typeof e === 'string') ? (x as string[]) : DAMAGED;
}

function metadataColumn(v: unknown): Readonly<Record<string, MetadataValue>> | typeof DAMAGED {
  const x = jsonColumn(v);
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return DAMAGED;
  return Object.values(x).every((e) => typeof e === 'string' || typeof e === 'number' || typeof e === 'boolean')
    ? (x as Record<string, MetadataValue>)
    : DAMAGED;
}

const damagedNames = (cols: Record<string, unknown>): string => Object.keys(cols).filter((k) => cols[k] === DAMAGED).join(',');

/*
 * Row mapping never throws: one damaged row must neither stop the gateway from starting nor block every
 * later change (the same row would come back with each refresh). Damage is named in `damaged`.
 */
function consumerRow(r: Record<string, unknown>): ConsumerRow {
  const roles = listColumn(r.roles), scopes = listColumn(r.scopes), metadata = metadataColumn(r.metadata);
  const damaged = damagedNames({ roles, scopes, metadata });
  return {
    id: String(r.id),
    roles: roles === DAMAGED || roles === null ? [] : roles,
    scopes: scopes === DAMAGED || scopes === null ? [] : scopes,
    metadata: metadata === DAMAGED ? {} : metadata,
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
    deletedAt: numOrNull(r.deleted_at),
    revision: num(r.revision),
    ...(damaged !== '' ? { damaged } : {}),
  };
}

function keyRow(r: Record<string, unknown>): KeyRow {
  const scopes = listColumn(r.scopes), cidrs = listColumn(r.cidrs), origins = listColumn(r.origins);
  const damaged = damagedNames({ scopes, cidrs, origins });
  return {
    id: String(r.id),
    consumerId: String(r.consumer_id),
    hash: String(r.hash),
    hint: String(r.hint),
    scopes: scopes === DAMAGED ? [] : scopes,
    cidrs: cidrs === DAMAGED ? [] : cidrs,
    origins: origins === DAMAGED ? [] : origins,
    expiresAt: numOrNull(r.expires_at),
    enabled: r.enabled === true || r.enabled === 1,
    createdAt: num(r.created_at),
    revokedAt: numOrNull(r.revoked_at),
    rotatedFrom: r.rotated_from === null || r.rotated_from === undefined ? null : String(r.rotated_from),
    imported: r.imported === true || r.imported === 1,
    revision: num(r.revision),
    ...(damaged !== '' ? { damaged } : {}),
  };
}

const listJson = (v: readonly string[] | null | undefined): string | null => (v === null || v === undefined ? null : JSON.stringify(v));

/** Ids of stored keys: shown in logs, events and the CLI; 71 random bits, unrelated to the key. */
export function newKeyId(): string {
  return `key_${randomBase62(12)}`;
}

/** The KeyStore over an executor (shared by SQLite and PostgreSQL). */
export function sqlKeyStore(x: SqlExecutor): KeyStore {
  const C = x.table('consumers');
  const K = x.table('api_keys');
  const S = x.table('store_state');

  const bump = async (tx: SqlTx): Promise<number> => {
    const rows = await tx.all<{ revision: unknown }>(`UPDATE ${S} SET revision = revision + 1 WHERE id = 1 RETURNING revision`);
    const rev = num(rows[0]?.revision);
    await x.announce(tx, rev);
    return rev;
  };
  const consumerIn = async (tx: SqlTx, id: string): Promise<ConsumerRow | undefined> => {
    const r = await tx.all(`SELECT * FROM ${C} WHERE id = ?`, [id]);
    return r[0] === undefined ? undefined : consumerRow(r[0]);
  };
  const keyIn = async (tx: SqlTx, id: string): Promise<KeyRow | undefined> => {
    const r = await tx.all(`SELECT * FROM ${K} WHERE id = ?`, [id]);
    return r[0] === undefined ? undefined : keyRow(r[0]);
  };
  const mustKey = async (tx: SqlTx, id: string): Promise<KeyRow> => {
    const k = await keyIn(tx, id);
    if (k === undefined) throw new KeyStoreError(`no API key with id ${JSON.stringify(id)}`);
    return k;
  };
  /** Inserts the consumer, or brings a deleted one back with the given fields. */
  const putConsumer = async (tx: SqlTx, c: ConsumerInput, rev: number, now: number, existing: ConsumerRow | undefined): Promise<void> => {
    const roles = JSON.stringify(c.roles ?? []);
    const scopes = JSON.stringify(c.scopes ?? []);
    const metadata = JSON.stringify(c.metadata ?? {});
    if (existing === undefined) {
      await tx.all(`INSERT INTO ${C} (id, roles, scopes, metadata, created_at, updated_at, deleted_at, revision) VALUES (?, ?, ?, ?, ?, ?, NULL, ?)`,
        [c.id, roles, scopes, metadata, now, now, rev]);
    } else {
      await tx.all(`UPDATE ${C} SET roles = ?, scopes = ?, metadata = ?, updated_at = ?, deleted_at = NULL, revision = ? WHERE id = ?`,
        [roles, scopes, metadata, now, rev, c.id]);
    }
  };
  const insertKey = async (tx: SqlTx, k: NewKey, rev: number, now: number, rotatedFrom: string | null): Promise<KeyRow> => {
    const consumer = await consumerIn(tx, k.consumerId);
    if (consumer === undefined || consumer.deletedAt !== null) await putConsumer(tx, { id: k.consumerId }, rev, now, consumer);
    const dup = await tx.all(`SELECT id FROM ${K} WHERE hash = ?`, [k.hash]);
    if (dup.length > 0) throw new KeyStoreError('a key with this hash already exists');
    const id = newKeyId();
    await tx.all(`INSERT INTO ${K} (id, consumer_id, hash, hint, scopes, cidrs, origins, expires_at, enabled, created_at, revoked_at, rotated_from, imported, revision)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)`,
    [id, k.consumerId, k.hash, k.hint, listJson(k.scopes), listJson(k.cidrs), listJson(k.origins), k.expiresAt ?? null, k.enabled ?? true, now, rotatedFrom, k.imported ?? false, rev]);
    return (await keyIn(tx, id))!;
  };

  return {
    description: x.description,
    mayHaveChanged: () => x.mayHaveChanged(),
    ...(x.watch !== undefined ? { watch: (fn: () => void) => x.watch!(fn) } : {}),

    changesSince: (since) => x.read(async (tx) => {
      const rows = await tx.all<{ revision: unknown }>(`SELECT revision FROM ${S} WHERE id = 1`);
      const revision = num(rows[0]?.revision ?? 0);
      if (revision === since) return null;
      // A revision below ours means the store was recreated: read everything again.
      const from = revision < since ? -1 : since;
      const consumers = (await tx.all(`SELECT * FROM ${C} WHERE revision > ?`, [from])).map(consumerRow);
      const keys = (await tx.all(`SELECT * FROM ${K} WHERE revision > ?`, [from])).map(keyRow);
      return { revision, consumers, keys };
    }),

    listConsumers: () => x.read(async (tx) => (await tx.all(`SELECT * FROM ${C} WHERE deleted_at IS NULL ORDER BY id`)).map(consumerRow)),
    getConsumer: (id) => x.read(async (tx) => {
      const c = await consumerIn(tx, id);
      return c?.deletedAt === null ? c : undefined;
    }),
    createConsumer: (c) => x.write(async (tx) => {
      const existing = await consumerIn(tx, c.id);
      if (existing !== undefined && existing.deletedAt === null) throw new KeyStoreError(`consumer ${JSON.stringify(c.id)} already exists`);
      const now = Date.now();
      await putConsumer(tx, c, await bump(tx), now, existing);
      return (await consumerIn(tx, c.id))!;
    }),
    updateConsumer: (c) => x.write(async (tx) => {
      const existing = await consumerIn(tx, c.id);
      if (existing === undefined || existing.deletedAt !== null) throw new KeyStoreError(`no consumer with id ${JSON.stringify(c.id)}`);
      await putConsumer(tx, {
        id: c.id,
        roles: c.roles ?? existing.roles,
        scopes: c.scopes ?? existing.scopes,
        metadata: c.metadata ?? existing.metadata,
      }, await bump(tx), Date.now(), existing);
      return (await consumerIn(tx, c.id))!;
    }),
    deleteConsumer: (id) => x.write(async (tx) => {
      const existing = await consumerIn(tx, id);
      if (existing === undefined || existing.deletedAt !== null) throw new KeyStoreError(`no consumer with id ${JSON.stringify(id)}`);
      const rev = await bump(tx);
      const now = Date.now();
      await tx.all(`UPDATE ${C} SET deleted_at = ?, updated_at = ?, revision = ? WHERE id = ?`, [now, now, rev, id]);
      const revoked = await tx.all(`UPDATE ${K} SET revoked_at = ?, enabled = ?, revision = ? WHERE consumer_id = ? AND revoked_at IS NULL RETURNING id`, [now, false, rev, id]);
      return revoked.length;
    }),

    listKeys: (consumerId) => x.read(async (tx) => {
      const rows = consumerId === undefined
        ? await tx.all(`SELECT * FROM ${K} ORDER BY created_at, id`)
        : await tx.all(`SELECT * FROM ${K} WHERE consumer_id = ? ORDER BY created_at, id`, [consumerId]);
      return rows.map(keyRow);
    }),
    getKey: (id) => x.read((tx) => keyIn(tx, id)),
    createKey: (k) => x.write(async (tx) => insertKey(tx, k, await bump(tx), Date.now(), null)),
    revokeKey: (id) => x.write(async (tx) => {
      const k = await mustKey(tx, id);
      if (k.revokedAt !== null) return k;
      const rev = await bump(tx);
      await tx.all(`UPDATE ${K} SET revoked_at = ?, enabled = ?, revision = ? WHERE id = ?`, [Date.now(), false, rev, id]);
      return (await keyIn(tx, id))!;
    }),
    setKeyEnabled: (id, enabled) => x.write(async (tx) => {
      const k = await mustKey(tx, id);
      if (k.revokedAt !== null && enabled) throw new KeyStoreError(`API key ${id} is revoked; create a new key instead`);
      if (k.enabled === enabled) return k;
      const rev = await bump(tx);
      await tx.all(`UPDATE ${K} SET enabled = ?, revision = ? WHERE id = ?`, [enabled, rev, id]);
      return (await keyIn(tx, id))!;
    }),
    rotateKey: (id, next, oldExpiresAt) => x.write(async (tx) => {
      const old = await mustKey(tx, id);
      if (old.revokedAt !== null) throw new KeyStoreError(`API key ${id} is revoked; create a new key instead`);
      const rev = await bump(tx);
      const now = Date.now();
      const created = await insertKey(tx, { ...next, consumerId: old.consumerId }, rev, now, old.id);
      const until = old.expiresAt !== null && old.expiresAt < oldExpiresAt ? old.expiresAt : oldExpiresAt;
      await tx.all(`UPDATE ${K} SET expires_at = ?, revision = ? WHERE id = ?`, [until, rev, id]);
      return { old: (await keyIn(tx, id))!, created };
    }),

    close: () => x.close(),
  };
}
