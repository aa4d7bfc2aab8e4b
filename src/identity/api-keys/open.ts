// Opening the configured key store, from `identity.keyStore` or from the CLI's `--store` value.
import { isAbsolute, resolve } from 'node:path';
import type { KeyStoreConfig } from '../schema.js';
import type { KeyStore } from './store.js';

export const DEFAULT_REFRESH_MS = 250;

/** Absolute SQLite path (relative paths resolve against the config file's directory). */
export function sqlitePath(cfg: Extract<KeyStoreConfig, { type: 'sqlite' }>, baseDir: string): string {
  return isAbsolute(cfg.path) ? cfg.path : resolve(baseDir, cfg.path);
}

/** `mustExist`: a SQLite file that is not there is an error instead of a new, empty store. */
export async function openKeyStore(cfg: KeyStoreConfig, baseDir: string, onError?: (err: Error) => void, opts: { mustExist?: boolean } = {}): Promise<KeyStore> {
  if (cfg.type === 'sqlite') {
    const { openSqliteKeyStore } = await import('./sqlite.js');
    return openSqliteKeyStore(sqlitePath(cfg, baseDir), opts.mustExist === true ? { mustExist: true } : {});
  }
  const { openPostgresKeyStore } = await import('./postgres.js');
  return openPostgresKeyStore({ url: cfg.url, ...(cfg.schema !== undefined ? { schema: cfg.schema } : {}), ...(onError !== undefined ? { onError } : {}) });
}

/**
 * `sqlite:PATH` (relative to the working directory) or `postgres://...` / `postgresql://...`, where an
 * optional `schema=NAME` query parameter picks the schema (it is removed before connecting).
 */
export function parseStoreSpec(spec: string): KeyStoreConfig {
  if (spec.startsWith('sqlite:')) {
    const path = spec.slice('sqlite:'.length);
    if (path === '') throw new Error('--store sqlite: needs a file path, e.g. sqlite:./keys.db');
    return { type: 'sqlite', path: resolve(path) };
  }
  if (spec.startsWith('postgres://') || spec.startsWith('postgresql://')) {
    let u: URL;
    try {
      u = new URL(spec);
    } catch {
      throw new Error('--store: not a valid postgres:// URL');
    }
    const schema = u.searchParams.get('schema') ?? undefined;
    u.searchParams.delete('schema');
    return { type: 'postgres', url: u.toString(), ...(schema !== undefined ? { schema } : {}) };
  }
  throw new Error('--store must be sqlite:PATH or postgres://USER@HOST:PORT/DB[?schema=NAME]');
}
