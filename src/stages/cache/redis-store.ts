// The shared cache store in Redis: one hash per primary key, `<keyPrefix>{<primary key>}` (the braces are
// a Redis Cluster hash tag; `{`, `}`, `%` in the key are percent-encoded as in src/state/redis.ts).
// Fields: `~v` = the Vary list ('' = none), `e:<variant>` = an encoded response (entry.ts). One round trip
// per lookup: a Lua script reads the Vary list and picks the variant from the request headers it is given.
// The hash expires with its longest-lived variant; each entry also carries its own expiry.
//
// Failure behaviour: commands fail fast (no offline queue, short command timeout); a failed lookup is a
// miss, a failed store is dropped. One log line per 10 s at most. Never a crash or a hung request.
import type { IncomingHttpHeaders } from 'node:http';
import { Redis } from 'ioredis';
import type { Logger } from '../../observability/logger.js';
import { failFastRedisOptions, redisKey } from '../../state/redis.js';
import { decodeEntry, encodeEntry, normalizeHeaderValue, type CachedResponse } from './entry.js';
import type { CacheStore, PurgeSpec } from './store.js';

export interface RedisCacheOptions {
  url: string;
  keyPrefix: string;
  commandTimeoutMs: number;
  logger: Logger;
}

// Must build the same variant string as variantOf() in entry.ts.
const LOOKUP = `
local vary = redis.call('HGET', KEYS[1], '~v')
if not vary then return nil end
if vary == '' then return redis.call('HGET', KEYS[1], 'e:') end
local h = {}
for i = 1, #ARGV, 2 do h[ARGV[i]] = ARGV[i + 1] end
local f = 'e:'
for name in string.gmatch(vary, '[^,]+') do f = f .. name .. '=' .. (h[name] or '\\1') .. '\\n' end
return redis.call('HGET', KEYS[1], f)`;

// A changed Vary list makes the old variants unreachable: drop them. Expiry only ever grows. At most
// ARGV[5] variants per key: a client varying a header at random (User-Agent, Accept-Language) must not
// grow one hash without bound; past the cap new variants are simply not stored (existing ones still serve).
const STORE = `
local cur = redis.call('HGET', KEYS[1], '~v')
if cur and cur ~= ARGV[1] then
  redis.call('DEL', KEYS[1])
elseif cur and redis.call('HLEN', KEYS[1]) > tonumber(ARGV[5]) and redis.call('HEXISTS', KEYS[1], ARGV[2]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], '~v', ARGV[1], ARGV[2], ARGV[3])
local t = redis.call('PTTL', KEYS[1])
if t < tonumber(ARGV[4]) then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
return 1`;

type CacheRedis = Redis & {
  cacheLookupBuffer(key: string, ...args: string[]): Promise<Buffer | null>;
  cacheStore(key: string, vary: string, field: string, value: Buffer, ttlMs: string, maxVariants: string): Promise<number>;
};

const ERROR_LOG_INTERVAL_MS = 10_000;
/** Vary variants stored per primary key */
export const MAX_VARIANTS_PER_KEY = 32;
const READY_WAIT_MS = 500;

export class RedisCacheStore implements CacheStore {
  readonly kind = 'redis' as const;
  readonly client: CacheRedis;
  private readonly prefix: string;
  private readonly log: Logger;
  private lastErrorLog = 0;
  private closed = false;

  constructor(opts: RedisCacheOptions) {
    this.prefix = opts.keyPrefix;
    this.log = opts.logger.child({ component: 'cache', store: 'redis' });
    this.client = new Redis(opts.url, failFastRedisOptions(opts.commandTimeoutMs)) as CacheRedis;
    this.client.defineCommand('cacheLookup', { numberOfKeys: 1, lua: LOOKUP });
    this.client.defineCommand('cacheStore', { numberOfKeys: 1, lua: STORE });
    this.client.on('error', (err: Error) => this.failed(err));
  }

  /** Waits a little for a first connection; a cache that cannot connect is bypassed, not fatal. */
  async ready(): Promise<void> {
    if (this.client.status === 'ready') return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(done, READY_WAIT_MS);
      t.unref();
      const c = this.client;
      function done() { clearTimeout(t); c.off('ready', done); resolve(); }
      c.once('ready', done);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try { await this.client.quit(); } catch { this.client.disconnect(); }
  }

  /** Sends the request's headers (the script picks the stored Vary ones), except the credential headers. */
  async lookup(primary: string, headers: IncomingHttpHeaders, now: number, secret: ReadonlySet<string>): Promise<CachedResponse | undefined> {
    const args: string[] = [];
    for (const name in headers) {
      if (secret.has(name)) continue;
      const v = normalizeHeaderValue(headers[name]);
      if (v !== undefined) args.push(name, v);
    }
    try {
      const b = await this.client.cacheLookupBuffer(redisKey(this.prefix, primary), ...args);
      if (b === null) return undefined;
      const e = decodeEntry(b);
      return e !== undefined && e.expiresAt > now ? e : undefined;
    } catch (err) {
      this.failed(err as Error);
      return undefined;
    }
  }

  store(primary: string, vary: string, variant: string, entry: CachedResponse): void {
    const ttl = Math.max(1, entry.expiresAt - Date.now());
    this.client.cacheStore(redisKey(this.prefix, primary), vary, `e:${variant}`, encodeEntry(entry), String(ttl), String(MAX_VARIANTS_PER_KEY))
      .catch((err: Error) => this.failed(err));
  }

  async purge(spec: PurgeSpec): Promise<number> {
    if ('key' in spec) return this.countEntries([redisKey(this.prefix, spec.key)]);
    // The key's tag is `{<escaped primary>}`: match its start, glob metacharacters escaped.
    const start = redisKey(this.prefix, spec.prefix).slice(0, -1).replace(/[*?[\]\\]/g, '\\$&');
    let n = 0;
    let cursor = '0';
    do {
      const [next, keys] = await this.client.scan(cursor, 'MATCH', `${start}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) n += await this.countEntries(keys);
    } while (cursor !== '0');
    return n;
  }

  /** Deletes the hashes; resolves how many responses (variants) they held. */
  private async countEntries(keys: string[]): Promise<number> {
    const m = this.client.multi();
    for (const k of keys) m.hlen(k);
    m.unlink(...keys);
    const r = await m.exec();
    let n = 0;
    if (r !== null) for (let i = 0; i < keys.length; i++) { const len = r[i]?.[1]; if (typeof len === 'number' && len > 0) n += len - 1; }
    return n;
  }

  private failed(err: Error): void {
    if (this.closed) return;
    const now = Date.now();
    if (now - this.lastErrorLog < ERROR_LOG_INTERVAL_MS) return;
    this.lastErrorLog = now;
    this.log.warn({ err: err.message }, 'cache store unavailable: requests go upstream');
  }
}
