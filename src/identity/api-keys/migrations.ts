// Numbered schema migrations of the key store, one list per database. Both lists build the same tables
// (SQLite with TEXT JSON and INTEGER times, PostgreSQL with jsonb and bigint): every time is epoch
// milliseconds, every write transaction bumps store_state.revision and stamps the rows it touched with
// the new value, so a reader fetches what changed since the revision it last saw. Consumers are
// soft-deleted (deleted_at) and keys revoked, never removed, so changes can always be seen that way.
// Append new versions; never edit a released one.

export interface Migration {
  readonly version: number;
  readonly statements: readonly string[];
}

export const SQLITE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    statements: [
      `CREATE TABLE store_state (id INTEGER PRIMARY KEY CHECK (id = 1), revision INTEGER NOT NULL)`,
      `INSERT INTO store_state (id, revision) VALUES (1, 0)`,
      `CREATE TABLE consumers (
        id TEXT PRIMARY KEY,
        roles TEXT NOT NULL DEFAULT '[]',
        scopes TEXT NOT NULL DEFAULT '[]',
        metadata TEXT NOT NULL DEFAULT '{}',
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        deleted_at INTEGER,
        revision INTEGER NOT NULL)`,
      `CREATE INDEX consumers_revision ON consumers (revision)`,
      `CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        consumer_id TEXT NOT NULL REFERENCES consumers (id),
        hash TEXT NOT NULL UNIQUE,
        hint TEXT NOT NULL,
        scopes TEXT,
        cidrs TEXT,
        origins TEXT,
        expires_at INTEGER,
        enabled INTEGER NOT NULL DEFAULT 1,
        created_at INTEGER NOT NULL,
        revoked_at INTEGER,
        rotated_from TEXT,
        revision INTEGER NOT NULL)`,
      `CREATE INDEX api_keys_revision ON api_keys (revision)`,
      `CREATE INDEX api_keys_consumer ON api_keys (consumer_id)`,
    ],
  },
  {
    // keys imported from another gateway (`keys import`): not in the pcl_ format
    version: 2,
    statements: [`ALTER TABLE api_keys ADD COLUMN imported INTEGER NOT NULL DEFAULT 0`],
  },
];

/** `s` is the schema name, already validated as a plain identifier. */
export function postgresMigrations(s: string): readonly Migration[] {
  return [
    {
      version: 1,
      statements: [
        `CREATE TABLE ${s}.store_state (id integer PRIMARY KEY CHECK (id = 1), revision bigint NOT NULL)`,
        `INSERT INTO ${s}.store_state (id, revision) VALUES (1, 0)`,
        `CREATE TABLE ${s}.consumers (
          id text PRIMARY KEY,
          roles jsonb NOT NULL DEFAULT '[]',
          scopes jsonb NOT NULL DEFAULT '[]',
          metadata jsonb NOT NULL DEFAULT '{}',
          created_at bigint NOT NULL,
          updated_at bigint NOT NULL,
          deleted_at bigint,
          revision bigint NOT NULL)`,
        `CREATE INDEX consumers_revision ON ${s}.consumers (revision)`,
        `CREATE TABLE ${s}.api_keys (
          id text PRIMARY KEY,
          consumer_id text NOT NULL REFERENCES ${s}.consumers (id),
          hash text NOT NULL UNIQUE,
          hint text NOT NULL,
          scopes jsonb,
          cidrs jsonb,
          origins jsonb,
          expires_at bigint,
          enabled boolean NOT NULL DEFAULT true,
          created_at bigint NOT NULL,
          revoked_at bigint,
          rotated_from text,
          revision bigint NOT NULL)`,
        `CREATE INDEX api_keys_revision ON ${s}.api_keys (revision)`,
        `CREATE INDEX api_keys_consumer ON ${s}.api_keys (consumer_id)`,
      ],
    },
    {
      version: 2,
      statements: [`ALTER TABLE ${s}.api_keys ADD COLUMN imported boolean NOT NULL DEFAULT false`],
    },
  ];
}
