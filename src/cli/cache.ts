// `portcullis cache purge --prefix P | --key K (-c FILE | --url URL)`: asks a running gateway's status
// listener (POST /admin/cache/purge) to drop cached responses. See docs/caching.md for the key format.
// The admin token comes from --token-file FILE, else (with -c FILE) the config's server.status.adminToken
// (its ${ENV} resolved from this environment), else $PORTCULLIS_ADMIN_TOKEN — the gateway's own order. Never from a plain command-line
// argument: those show up in `ps` and shell history.
import { readFile } from 'node:fs/promises';
import { PROGRAM, UsageError, type OptionValues } from './args.js';

export interface CacheIo {
  out(line: string): void;
  err(line: string): void;
}

const usage = (msg: string): UsageError => new UsageError(msg, `${PROGRAM} cache --help`);

/** The status listener's base URL (server.status, default 127.0.0.1:9901) and admin token from a config file. */
async function statusFromConfig(file: string): Promise<{ base: string; adminToken: string | undefined }> {
  const { loadConfigFile } = await import('../config/load.js');
  const { formatIssue } = await import('../config/issues.js');
  const r = await loadConfigFile(file);
  if (!r.ok) throw new Error(`invalid configuration ${file}: ${r.errors.map(formatIssue).join('; ')}`);
  const st = r.config.server?.status;
  if (st?.enabled === false) throw new Error(`${file}: the status listener is disabled (server.status.enabled: false); the purge call needs it`);
  let host = st?.address ?? '127.0.0.1';
  // A wildcard bind is reached on loopback.
  if (host === '0.0.0.0') host = '127.0.0.1';
  else if (host === '::') host = '::1';
  return { base: `http://${host.includes(':') ? `[${host}]` : host}:${st?.port ?? 9901}`, adminToken: st?.adminToken };
}

const ADMIN_TOKEN_ENV = 'PORTCULLIS_ADMIN_TOKEN';

export async function runCache(values: OptionValues, positionals: readonly string[], io: CacheIo): Promise<number> {
  const sub = positionals[0];
  if (sub !== 'purge') throw usage(sub === undefined ? 'missing subcommand (purge)' : `unknown subcommand '${sub}'`);
  const key = typeof values.key === 'string' ? values.key : undefined;
  const prefix = typeof values.prefix === 'string' ? values.prefix : undefined;
  if ((key === undefined) === (prefix === undefined)) throw usage('give exactly one of --key or --prefix');
  if ((key ?? prefix) === '') throw usage('--key/--prefix must not be empty');
  let base: string;
  let token: string | undefined;
  if (typeof values.url === 'string') base = values.url.replace(/\/+$/, '');
  else if (typeof values.config === 'string') ({ base, adminToken: token } = await statusFromConfig(values.config));
  else throw usage('give -c FILE (status listener from the config) or --url http://127.0.0.1:9901');
  if (typeof values['token-file'] === 'string') token = (await readFile(values['token-file'], 'utf8')).trim();
  // as the gateway does: the config's server.status.adminToken first, then the environment
  else if ((token === undefined || token === '') && process.env[ADMIN_TOKEN_ENV] !== '') token = process.env[ADMIN_TOKEN_ENV];
  if (token === undefined || token === '') {
    throw usage(`no admin token: set ${ADMIN_TOKEN_ENV}, give --token-file FILE, or -c FILE with server.status.adminToken`);
  }
  let res: Response;
  try {
    res = await fetch(`${base}/admin/cache/purge`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify(key !== undefined ? { key } : { prefix }),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (e) {
    io.err(`${PROGRAM}: cannot reach the status listener at ${base}: ${(e as Error).message}`);
    return 1;
  }
  const text = await res.text();
  let body: { status?: string; purged?: number; relayed?: boolean } = {};
  try { body = JSON.parse(text) as typeof body; } catch { /* reported below */ }
  if (res.status !== 200) {
    io.err(`${PROGRAM}: purge failed (${res.status}): ${body.status ?? text}`);
    return 1;
  }
  if (values.json === true) io.out(text);
  else io.out(`purged ${body.purged ?? 0} cached response${body.purged === 1 ? '' : 's'}${body.relayed === true ? ' (relayed to the other workers)' : ''}`);
  return 0;
}
