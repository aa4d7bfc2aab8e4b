// `portcullis keys ...` and `portcullis consumers ...`: manage API keys and consumers in the key store
// (identity.keyStore of a config file, or --store sqlite:PATH / postgres://...). Keys are generated here,
// printed once, and stored only as an HMAC with the pepper; no command ever prints a stored hash.
import { readFile, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { PROGRAM, UsageError, type OptionValues } from './args.js';
import type { KeyStoreConfig } from '../identity/schema.js';
import { checkPepper, generateApiKey, hashApiKey, importedKeyProblem, isWellFormedKey, keyHint, KEY_LENGTH, KEY_PREFIX } from '../identity/api-keys/format.js';
import { normalizeOrigin } from '../identity/api-keys/records.js';
import { openKeyStore, parseStoreSpec } from '../identity/api-keys/open.js';
import { KeyStoreError, type ConsumerRow, type KeyRow, type KeyStore, type MetadataValue } from '../identity/api-keys/store.js';
import { parseCidrList } from '../net/cidr.js';

export interface KeysIo {
  out(line: string): void;
  err(line: string): void;
  /** stdin, for `keys hash` and `keys import` */
  readInput?(): Promise<string>;
}

export const PEPPER_ENV = 'PORTCULLIS_KEY_PEPPER';
const DEFAULT_OVERLAP_MS = 24 * 3600_000;
const CONSUMER_ID = /^[A-Za-z0-9_.@:-]{1,128}$/;
const METADATA_KEY = /^[A-Za-z0-9_.-]+$/;
const UNITS: Readonly<Record<string, number>> = { s: 1000, m: 60_000, h: 3600_000, d: 86_400_000, w: 7 * 86_400_000 };
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;

export const KEYS_SUBCOMMANDS = ['create', 'import', 'list', 'show', 'rotate', 'revoke', 'enable', 'disable', 'hash', 'generate'] as const;
export const CONSUMERS_SUBCOMMANDS = ['create', 'update', 'list', 'show', 'delete'] as const;

/** Options each subcommand uses besides -c/--store/--json. Any other is an error, never silently ignored
 * (`keys rotate --scopes read` must not look as if it narrowed the new key). */
const KEYS_OPTIONS: Readonly<Record<(typeof KEYS_SUBCOMMANDS)[number], readonly string[]>> = {
  create: ['consumer', 'scopes', 'cidr', 'origin', 'expires', 'disabled'],
  import: ['consumer', 'scopes', 'cidr', 'origin', 'expires', 'disabled', 'file'],
  list: ['consumer'],
  show: [], revoke: [], enable: [], disable: [], hash: [], generate: [],
  rotate: ['overlap', 'expires'],
};
const CONSUMERS_OPTIONS: Readonly<Record<(typeof CONSUMERS_SUBCOMMANDS)[number], readonly string[]>> = {
  create: ['roles', 'scopes', 'metadata'], update: ['roles', 'scopes', 'metadata'], list: [], show: [], delete: [],
};
const COMMON_OPTIONS: readonly string[] = ['config', 'store', 'json'];

function rejectUnusedOptions(values: OptionValues, allowed: readonly string[], command: string, sub: string): void {
  for (const name of Object.keys(values)) {
    if (values[name] === undefined || COMMON_OPTIONS.includes(name) || allowed.includes(name)) continue;
    const hint = rotateHint(command, sub, name);
    throw usage(`--${name} does not apply to ${command} ${sub}${hint}`, command);
  }
}

function rotateHint(command: string, sub: string, name: string): string {
  return command === 'keys' && sub === 'rotate' && (name === 'scopes' || name === 'cidr' || name === 'origin')
    ? ' (a rotated key keeps the old key\'s restrictions; create a new key to change them)'
    : '';
}

const usage = (msg: string, command: string): UsageError => new UsageError(msg, `${PROGRAM} ${command} --help`);

/** `90s`, `15m`, `12h`, `30d`, `2w` (or `0`) → milliseconds. */
export function parseDuration(s: string): number | undefined {
  if (s === '0') return 0;
  const m = /^(\d{1,9})([smhdw])$/.exec(s);
  return m === null ? undefined : Number(m[1]) * UNITS[m[2]!]!;
}

/** `--expires`: a duration from now or an RFC 3339 time; must be in the future. */
export function parseExpiry(s: string, now: number, command: string): number {
  const d = parseDuration(s);
  const at = d !== undefined ? now + d : RFC3339.test(s) ? Date.parse(s) : NaN;
  if (Number.isNaN(at)) throw usage(`--expires must be a duration (30d, 12h, 90m) or an RFC 3339 time (2026-01-31T00:00:00Z), got ${JSON.stringify(s)}`, command);
  if (at <= now) throw usage('--expires is not in the future', command);
  return at;
}

function list(v: string | boolean | undefined): string[] | undefined {
  if (typeof v !== 'string') return undefined;
  return v.split(',').map((x) => x.trim()).filter((x) => x !== '');
}

function scopesOpt(v: string | boolean | undefined, command: string): string[] | undefined {
  const s = list(v);
  if (s === undefined) return undefined;
  for (const x of s) if (/\s/.test(x)) throw usage(`invalid scope ${JSON.stringify(x)}`, command);
  return s;
}

function cidrsOpt(v: string | boolean | undefined, command: string): string[] | undefined {
  const c = list(v);
  if (c === undefined) return undefined;
  if (c.length === 0) throw usage('--cidr needs at least one address or CIDR block', command);
  const p = parseCidrList(c);
  if (!p.ok) throw usage(`--cidr: ${p.errors[0]!.reason}`, command);
  return c;
}

function originsOpt(v: string | boolean | undefined, command: string): string[] | undefined {
  const o = list(v);
  if (o === undefined) return undefined;
  if (o.length === 0) throw usage('--origin needs at least one origin', command);
  return o.map((x) => {
    const n = normalizeOrigin(x);
    if (n === undefined) throw usage(`--origin: ${JSON.stringify(x)} is not an origin like https://app.example.com`, command);
    return n;
  });
}

function metadataOpt(v: string | boolean | undefined, command: string): Record<string, MetadataValue> | undefined {
  const pairs = list(v);
  if (pairs === undefined) return undefined;
  const out: Record<string, MetadataValue> = {};
  for (const p of pairs) {
    const eq = p.indexOf('=');
    const k = eq === -1 ? '' : p.slice(0, eq).trim();
    if (!METADATA_KEY.test(k)) throw usage(`--metadata takes key=value pairs (keys: letters, digits, _ . -), got ${JSON.stringify(p)}`, command);
    const raw = p.slice(eq + 1).trim();
    out[k] = raw === 'true' ? true : raw === 'false' ? false : /^-?\d+(\.\d+)?$/.test(raw) && raw.length < 16 ? Number(raw) : raw;
  }
  return out;
}

function consumerId(v: string | undefined, command: string, what = 'CONSUMER_ID'): string {
  if (v === undefined) throw usage(`missing ${what}`, command);
  if (!CONSUMER_ID.test(v)) throw usage(`invalid consumer id ${JSON.stringify(v)} (letters, digits and _ . @ : -, at most 128)`, command);
  return v;
}

const iso = (t: number | null): string => (t === null ? '-' : new Date(t).toISOString());

export function keyStatus(k: KeyRow, now = Date.now()): 'revoked' | 'disabled' | 'expired' | 'active' {
  if (k.revokedAt !== null) return 'revoked';
  if (!k.enabled) return 'disabled';
  if (k.expiresAt !== null && k.expiresAt <= now) return 'expired';
  return 'active';
}

/** How a key is named to people: its format and last four characters. */
const keyLabel = (k: KeyRow): string => (k.imported ? `…${k.hint} (imported)` : `${KEY_PREFIX}…${k.hint}`);

/** What the CLI shows of a key: never the hash. */
function keyView(k: KeyRow): Record<string, unknown> {
  return {
    id: k.id,
    consumer: k.consumerId,
    hint: k.hint,
    imported: k.imported,
    status: keyStatus(k),
    enabled: k.enabled,
    scopes: k.scopes,
    cidrs: k.cidrs,
    origins: k.origins,
    expiresAt: k.expiresAt === null ? null : iso(k.expiresAt),
    createdAt: iso(k.createdAt),
    revokedAt: k.revokedAt === null ? null : iso(k.revokedAt),
    rotatedFrom: k.rotatedFrom,
  };
}

function consumerView(c: ConsumerRow): Record<string, unknown> {
  return { id: c.id, roles: c.roles, scopes: c.scopes, metadata: c.metadata, createdAt: iso(c.createdAt), updatedAt: iso(c.updatedAt) };
}

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

function showFields(io: KeysIo, fields: readonly (readonly [string, string])[]): void {
  const w = Math.max(...fields.map(([k]) => k.length)) + 1;
  for (const [k, v] of fields) io.out(`${`${k}:`.padEnd(w)} ${v}`);
}

const join = (v: readonly string[] | null): string => (v === null ? '-' : v.join(','));

function keyFields(k: KeyRow): [string, string][] {
  return [
    ['id', k.id], ['consumer', k.consumerId], ['key', keyLabel(k)], ['status', keyStatus(k)],
    ['scopes', k.scopes === null ? '(the consumer\'s)' : join(k.scopes)], ['cidrs', k.cidrs === null ? '(any)' : join(k.cidrs)],
    ['origins', k.origins === null ? '(any)' : join(k.origins)], ['expires', k.expiresAt === null ? 'never' : iso(k.expiresAt)],
    ['created', iso(k.createdAt)], ...(k.revokedAt !== null ? [['revoked', iso(k.revokedAt)] as [string, string]] : []),
    ...(k.rotatedFrom !== null ? [['rotated from', k.rotatedFrom] as [string, string]] : []),
  ];
}

interface Context {
  storeCfg: KeyStoreConfig | undefined;
  baseDir: string;
  pepper: string | undefined;
  pepperSource: string;
}

/** Reads the store and pepper settings from `-c FILE` and/or `--store`. */
async function context(values: OptionValues, command: string, io: KeysIo, needsPepper = true): Promise<Context | number> {
  let storeCfg: KeyStoreConfig | undefined;
  let baseDir = process.cwd();
  let pepper: string | undefined = process.env[PEPPER_ENV] || undefined;
  let pepperSource = `the ${PEPPER_ENV} environment variable`;
  if (typeof values.config === 'string') {
    const file = values.config;
    try {
      if ((await stat(file)).isDirectory()) throw usage(`config file is a directory: ${file}`, command);
    } catch (e) {
      if (e instanceof UsageError) throw e;
      throw usage(`config file not found: ${file}`, command);
    }
    const { loadConfigFile, formatIssue } = await import('../config/load.js');
    // Commands that only read or change metadata (list, show, revoke, consumers ...) work without the
    // pepper: an identity.pepper of ${PORTCULLIS_KEY_PEPPER} with the variable unset is no error for them.
    const r = await loadConfigFile(file, process.env, needsPepper ? {} : { optionalSecrets: ['identity.pepper'] });
    if (!r.ok) {
      for (const i of r.errors) io.err(formatIssue(i));
      return 1;
    }
    baseDir = dirname(resolve(file));
    storeCfg = r.config.identity?.keyStore;
    if (r.placeholders?.includes('identity.pepper') === true) {
      pepper = undefined; // not available; these commands never ask for it
    } else if (r.config.identity?.pepper !== undefined) {
      pepper = r.config.identity.pepper;
      pepperSource = `identity.pepper in ${file}`;
    } else {
      pepperSource = `identity.pepper in ${file} or the ${PEPPER_ENV} environment variable`;
    }
  }
  if (typeof values.store === 'string') {
    try {
      storeCfg = parseStoreSpec(values.store);
    } catch (e) {
      throw usage((e as Error).message, command);
    }
  }
  return { storeCfg, baseDir, pepper, pepperSource };
}

/** `create`: the command may create a missing SQLite store (keys create, consumers create); others read or change what is there. */
async function withStore<T>(c: Context, command: string, fn: (s: KeyStore) => Promise<T>, create = false): Promise<T> {
  if (c.storeCfg === undefined) throw usage('no key store: pass --store sqlite:PATH or postgres://..., or -c FILE with identity.keyStore', command);
  const store = await openKeyStore(c.storeCfg, c.baseDir, undefined, { mustExist: !create });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

const pepperOf = (c: Context): string => checkPepper(c.pepper, c.pepperSource);

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function printNewKey(io: KeysIo, key: string, k: KeyRow, json: boolean): void {
  if (json) {
    io.out(JSON.stringify({ ...keyView(k), key }));
    return;
  }
  showFields(io, [['key', key], ...keyFields(k).filter(([n]) => n !== 'key')]);
  io.out('This is the only time the key is shown: store it now, it cannot be shown again.');
}

/** Runs `keys SUBCOMMAND ...`. */
export async function runKeys(values: OptionValues, positionals: readonly string[], io: KeysIo): Promise<number> {
  const command = 'keys';
  const [sub, arg] = positionals;
  if (sub === undefined) throw usage(`missing subcommand (${KEYS_SUBCOMMANDS.join(', ')})`, command);
  if (!(KEYS_SUBCOMMANDS as readonly string[]).includes(sub)) throw usage(`unknown subcommand ${JSON.stringify(sub)} (${KEYS_SUBCOMMANDS.join(', ')})`, command);
  rejectUnusedOptions(values, KEYS_OPTIONS[sub as keyof typeof KEYS_OPTIONS], command, sub);
  const takesId = sub === 'show' || sub === 'rotate' || sub === 'revoke' || sub === 'enable' || sub === 'disable';
  if (takesId && arg === undefined) throw usage(`keys ${sub} needs a KEY_ID`, command);
  if (!takesId && arg !== undefined) throw usage(`unexpected argument ${JSON.stringify(arg)}`, command);
  const json = values.json === true;
  const needsPepper = sub === 'create' || sub === 'import' || sub === 'rotate' || sub === 'hash' || sub === 'generate';
  const c = await context(values, command, io, needsPepper);
  if (typeof c === 'number') return c;

  try {
    switch (sub) {
      case 'generate': {
        const pepper = pepperOf(c);
        const key = generateApiKey();
        io.out(`key:  ${key}`);
        io.out(`hash: ${hashApiKey(pepper, key)}`);
        io.out('Put the hash under identity.consumers[].apiKeys[].hash; give the key to its user. The key is not shown again.');
        return 0;
      }
      case 'hash': {
        const pepper = pepperOf(c);
        const key = (await (io.readInput ?? readStdin)()).trim();
        if (!isWellFormedKey(key)) {
          io.err(`${PROGRAM}: stdin is not a Portcullis API key (${KEY_PREFIX} followed by ${KEY_LENGTH - KEY_PREFIX.length} letters and digits, with a valid checksum)`);
          return 1;
        }
        io.out(hashApiKey(pepper, key));
        return 0;
      }
      case 'import': {
        // The key comes from stdin or --file, never from the command line: argv is visible to every user in
        // `ps` and lands in shell history.
        const k = keyOptions(values, command);
        const pepper = pepperOf(c);
        const source = typeof values.file === 'string' ? values.file : 'stdin';
        let raw: string;
        try {
          raw = typeof values.file === 'string' ? await readFile(values.file, 'utf8') : await (io.readInput ?? readStdin)();
        } catch (e) {
          io.err(`${PROGRAM}: cannot read ${source}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
          return 1;
        }
        const key = raw.replace(/^\uFEFF/, '').trim();
        if (key === '') { io.err(`${PROGRAM}: no key in ${source} (write the key to stdin or to the --file)`); return 1; }
        if (/[\r\n]/.test(key)) { io.err(`${PROGRAM}: ${source} holds more than one line: import one key at a time`); return 1; }
        const generated = isWellFormedKey(key);
        const problem = generated ? undefined : importedKeyProblem(key);
        if (problem !== undefined) {
          io.err(`${PROGRAM}: refusing to import the key from ${source}: ${problem} (rule: docs/api-keys.md, "Importing keys")`);
          return 1;
        }
        const row = await withStore(c, command, (s) => s.createKey({ ...k, hash: hashApiKey(pepper, key), hint: keyHint(key), imported: !generated }), true);
        if (json) io.out(JSON.stringify(keyView(row)));
        else {
          showFields(io, keyFields(row));
          io.out(`Imported: the store keeps only the key's HMAC. Gateways accept it within their refresh interval; \`keys rotate ${row.id}\` replaces it with a ${KEY_PREFIX} key when you are ready.`);
        }
        return 0;
      }
      case 'create': {
        const k = keyOptions(values, command);
        const pepper = pepperOf(c);
        const key = generateApiKey();
        const row = await withStore(c, command, (s) => s.createKey({ ...k, hash: hashApiKey(pepper, key), hint: keyHint(key) }), true);
        printNewKey(io, key, row, json);
        return 0;
      }
      case 'rotate': {
        const overlap = typeof values.overlap === 'string' ? parseDuration(values.overlap) : DEFAULT_OVERLAP_MS;
        if (overlap === undefined) throw usage('--overlap must be a duration such as 24h, 30m or 0', command);
        const now = Date.now();
        const expires = typeof values.expires === 'string' ? parseExpiry(values.expires, now, command) : undefined;
        const pepper = pepperOf(c);
        const key = generateApiKey();
        const { old, created } = await withStore(c, command, async (s) => {
          const prev = await s.getKey(arg!);
          if (prev === undefined) throw new KeyStoreError(`no API key with id ${JSON.stringify(arg)}`);
          // Same restrictions; a key that had a lifetime gets the same lifetime again, unless --expires says otherwise.
          const lifetime = prev.expiresAt !== null ? prev.expiresAt - prev.createdAt : undefined;
          return s.rotateKey(arg!, {
            consumerId: prev.consumerId,
            hash: hashApiKey(pepper, key),
            hint: keyHint(key),
            scopes: prev.scopes,
            cidrs: prev.cidrs,
            origins: prev.origins,
            expiresAt: expires ?? (lifetime !== undefined && lifetime > 0 ? now + lifetime : null),
            enabled: prev.enabled,
          }, now + overlap);
        });
        printNewKey(io, key, created, json);
        if (!json) io.out(`The old key ${old.id} keeps working until ${iso(old.expiresAt)}.`);
        return 0;
      }
      case 'revoke': {
        const k = await withStore(c, command, (s) => s.revokeKey(arg!));
        if (json) io.out(JSON.stringify(keyView(k)));
        else io.out(`revoked ${k.id} (consumer ${k.consumerId}); every gateway refuses it within its refresh interval`);
        return 0;
      }
      case 'enable':
      case 'disable': {
        const k = await withStore(c, command, (s) => s.setKeyEnabled(arg!, sub === 'enable'));
        if (json) io.out(JSON.stringify(keyView(k)));
        else io.out(`${sub}d ${k.id} (consumer ${k.consumerId})`);
        return 0;
      }
      case 'show': {
        const k = await withStore(c, command, (s) => s.getKey(arg!));
        if (k === undefined) { io.err(`${PROGRAM}: no API key with id ${JSON.stringify(arg)}`); return 1; }
        if (json) io.out(JSON.stringify(keyView(k)));
        else showFields(io, keyFields(k));
        return 0;
      }
      case 'list': {
        const consumer = typeof values.consumer === 'string' ? consumerId(values.consumer, command, '--consumer') : undefined;
        const keys = await withStore(c, command, (s) => s.listKeys(consumer));
        if (json) { io.out(JSON.stringify(keys.map(keyView))); return 0; }
        if (keys.length === 0) { io.out('no API keys'); return 0; }
        io.out(table([['ID', 'CONSUMER', 'KEY', 'STATUS', 'EXPIRES'], ...keys.map((k) => [k.id, k.consumerId, keyLabel(k), keyStatus(k), k.expiresAt === null ? 'never' : iso(k.expiresAt)])]));
        return 0;
      }
    }
  } catch (e) {
    if (e instanceof KeyStoreError) { io.err(`${PROGRAM}: ${e.message}`); return 1; }
    throw e;
  }
  return 2;
}

/** Runs `consumers SUBCOMMAND ...`. */
export async function runConsumers(values: OptionValues, positionals: readonly string[], io: KeysIo): Promise<number> {
  const command = 'consumers';
  const [sub, arg] = positionals;
  if (sub === undefined) throw usage(`missing subcommand (${CONSUMERS_SUBCOMMANDS.join(', ')})`, command);
  if (!(CONSUMERS_SUBCOMMANDS as readonly string[]).includes(sub)) throw usage(`unknown subcommand ${JSON.stringify(sub)} (${CONSUMERS_SUBCOMMANDS.join(', ')})`, command);
  rejectUnusedOptions(values, CONSUMERS_OPTIONS[sub as keyof typeof CONSUMERS_OPTIONS], command, sub);
  if (sub === 'list' && arg !== undefined) throw usage(`unexpected argument ${JSON.stringify(arg)}`, command);
  const json = values.json === true;
  const id = sub === 'list' ? '' : consumerId(arg, command);
  const roles = scopesOpt(values.roles, command);
  const scopes = scopesOpt(values.scopes, command);
  const metadata = metadataOpt(values.metadata, command);
  const c = await context(values, command, io, false);
  if (typeof c === 'number') return c;
  const print = (row: ConsumerRow): void => {
    if (json) { io.out(JSON.stringify(consumerView(row))); return; }
    showFields(io, [['id', row.id], ['roles', row.roles.join(',') || '-'], ['scopes', row.scopes.join(',') || '-'],
      ['metadata', Object.entries(row.metadata).map(([k, v]) => `${k}=${String(v)}`).join(',') || '-'], ['created', iso(row.createdAt)], ['updated', iso(row.updatedAt)]]);
  };
  try {
    switch (sub) {
      case 'create':
        print(await withStore(c, command, (s) => s.createConsumer({ id, ...(roles ? { roles } : {}), ...(scopes ? { scopes } : {}), ...(metadata ? { metadata } : {}) }), true));
        return 0;
      case 'update':
        if (roles === undefined && scopes === undefined && metadata === undefined) throw usage('consumers update needs --roles, --scopes or --metadata', command);
        print(await withStore(c, command, (s) => s.updateConsumer({ id, ...(roles ? { roles } : {}), ...(scopes ? { scopes } : {}), ...(metadata ? { metadata } : {}) })));
        return 0;
      case 'show': {
        const row = await withStore(c, command, (s) => s.getConsumer(id));
        if (row === undefined) { io.err(`${PROGRAM}: no consumer with id ${JSON.stringify(id)}`); return 1; }
        print(row);
        const keys = await withStore(c, command, (s) => s.listKeys(id));
        if (!json) io.out(`keys:     ${keys.filter((k) => keyStatus(k) === 'active').length} active, ${keys.length} in all`);
        return 0;
      }
      case 'delete': {
        const revoked = await withStore(c, command, (s) => s.deleteConsumer(id));
        if (json) io.out(JSON.stringify({ id, deleted: true, revokedKeys: revoked }));
        else io.out(`deleted consumer ${id}; revoked ${revoked} key${revoked === 1 ? '' : 's'}`);
        return 0;
      }
      case 'list': {
        const rows = await withStore(c, command, (s) => s.listConsumers());
        if (json) { io.out(JSON.stringify(rows.map(consumerView))); return 0; }
        if (rows.length === 0) { io.out('no consumers'); return 0; }
        io.out(table([['ID', 'ROLES', 'SCOPES', 'METADATA'], ...rows.map((r) => [r.id, r.roles.join(',') || '-', r.scopes.join(',') || '-',
          Object.entries(r.metadata).map(([k, v]) => `${k}=${String(v)}`).join(',') || '-'])]));
        return 0;
      }
    }
  } catch (e) {
    if (e instanceof KeyStoreError) { io.err(`${PROGRAM}: ${e.message}`); return 1; }
    throw e;
  }
  return 2;
}

/** The new key's record fields from `keys create` / `keys import` options (the same options, the same rules). */
function keyOptions(values: Readonly<Record<string, string | boolean | undefined>>, command: string) {
  return {
    consumerId: consumerId(typeof values.consumer === 'string' ? values.consumer : undefined, command, '--consumer'),
    scopes: scopesOpt(values.scopes, command) ?? null,
    cidrs: cidrsOpt(values.cidr, command) ?? null,
    origins: originsOpt(values.origin, command) ?? null,
    expiresAt: typeof values.expires === 'string' ? parseExpiry(values.expires, Date.now(), command) : null,
    enabled: values.disabled !== true,
  };
}
