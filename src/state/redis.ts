// The Redis state store: shared by every worker of every node pointed at the same Redis.
//
// Failure behaviour: commands fail fast instead of queueing while Redis is down (enableOfflineQueue:
// false), a command that takes longer than commandTimeoutMs is a failure, and ioredis keeps reconnecting
// in the background. A failure rejects the operation; callers fail closed (DPoP replay check → 503-style
// refusal), the process never crashes and no request waits longer than the command timeout.
//
// Key names: `<keyPrefix>{<logical key>}`. The braces are a Redis Cluster hash tag: only the part inside
// them picks the slot, so the keys a multi-key operation derives from one logical key (e.g. a rate-limit
// window's `{k}:prev` and `{k}:cur`) always live on one node and a Lua script may touch them together.
// `{`, `}` and `%` inside a logical key are percent-encoded so a key can never end the tag early.
import { Redis } from 'ioredis';
import type { StateConfig } from './schema.js';
import type { RateCheck, RateResult, StateStore } from './types.js';
import type { Logger } from '../observability/logger.js';

type RedisStateConfig = Extract<StateConfig, { type: 'redis' }>;

export const DEFAULT_KEY_PREFIX = 'portcullis:';
export const DEFAULT_COMMAND_TIMEOUT_MS = 200;
/** how long ready() waits for a first connection before letting the gateway start anyway */
const READY_WAIT_MS = 2000;
/** at most one Redis error log line per this interval (a down Redis would otherwise log per request) */
const ERROR_LOG_INTERVAL_MS = 10_000;

/**
 * src/stages/rate-limit/algorithms.ts decide(), in Lua: all checks of one request in one script call
 * (one round trip), counted only when all pass. Redis's clock (TIME) decides, so every gateway process
 * sharing this Redis agrees on window edges. KEYS[i] = one hash per limit key (fields a, b, c);
 * ARGV = 6 values per check (alg, unused, limit, windowMs, burst, maxDelayMs) mirroring RateCheck.
 * Returns integers: allowed, delay, then per check remaining, resetMs, retryMs (ms rounded up).
 */
export const RATE_LIMIT_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local eps = 0.000001
local n = #KEYS
local out = {1, 0}
local na, nb, nc, ttl = {}, {}, {}, {}
local allowed, delay = 1, 0
local oks = {}
for i = 1, n do
  local j = (i - 1) * 6
  local alg, limit, w, burst, maxDelay = tonumber(ARGV[j + 1]), tonumber(ARGV[j + 3]), tonumber(ARGV[j + 4]), tonumber(ARGV[j + 5]), tonumber(ARGV[j + 6])
  local v = redis.call('HMGET', KEYS[i], 'a', 'b', 'c')
  local a, b, c = tonumber(v[1]) or -1, tonumber(v[2]) or 0, tonumber(v[3]) or 0
  local ok, rem, reset, retry, dl = 0, 0, 0, 0, 0
  if alg == 2 then
    local e = w / limit
    local tat = a
    if tat < now then tat = now end
    local newTat = tat + e
    local wait = newTat - e * burst - now
    reset = newTat - now
    if wait <= eps or wait <= maxDelay then
      ok = 1
      if wait > eps then dl = wait end
      rem = math.floor((now + e * burst - newTat) / e + eps)
      if rem < 0 then rem = 0 end
      na[i], nb[i], nc[i], ttl[i] = newTat, 0, 0, newTat - now
    else
      retry = wait
      reset = tat - now
    end
  else
    local win = math.floor(now / w)
    local start = win * w
    local cur, prev = 0, 0
    if a == win then cur, prev = b, c elseif a == win - 1 then prev = b end
    reset = start + w - now
    if alg == 0 then
      if cur + 1 <= limit then
        ok, rem = 1, limit - cur - 1
        na[i], nb[i], nc[i], ttl[i] = win, cur + 1, 0, start + w - now
      else
        retry = start + w - now
      end
    else
      local f = (now - start) / w
      local est = prev * (1 - f) + cur
      if est + 1 <= limit then
        ok, rem = 1, math.floor(limit - est - 1)
        na[i], nb[i], nc[i], ttl[i] = win, cur + 1, prev, start + 2 * w - now
      else
        local room = limit - 1 - cur
        if room >= 0 and prev > 0 then
          retry = start + (1 - room / prev) * w - now
        else
          local g = 0
          if cur > 0 then g = math.max(0, 1 - (limit - 1) / cur) end
          retry = start + w + g * w - now
        end
      end
    end
  end
  if ok == 0 then allowed = 0 elseif dl > delay then delay = dl end
  oks[i] = ok
  out[#out + 1] = rem
  out[#out + 1] = math.ceil(reset)
  out[#out + 1] = math.ceil(retry)
end
out[1] = allowed
if allowed == 1 then
  out[2] = math.ceil(delay)
  for i = 1, n do
    redis.call('HSET', KEYS[i], 'a', string.format('%.4f', na[i]), 'b', nb[i], 'c', nc[i])
    redis.call('PEXPIRE', KEYS[i], math.max(1, math.ceil(ttl[i])))
  end
else
  -- a refused request consumed nothing: the limits it passed keep the unit it would have used
  for i = 1, n do
    if oks[i] == 1 then out[3 * i] = out[3 * i] + 1 end
  end
end
return out
`;

interface RateLimitCommand {
  portcullisRateLimit(numKeys: number, ...args: (string | number)[]): Promise<number[]>;
}

const NEEDS_ESCAPE = /[{}%]/;
const ESCAPES: Readonly<Record<string, string>> = { '{': '%7B', '}': '%7D', '%': '%25' };

export function redisKey(prefix: string, key: string): string {
  const safe = NEEDS_ESCAPE.test(key) ? key.replace(/[{}%]/g, (c) => ESCAPES[c]!) : key;
  return `${prefix}{${safe}}`;
}

export interface RedisStoreOptions {
  logger: Logger;
  readyWaitMs?: number;
}

export class RedisStateStore implements StateStore {
  readonly kind = 'redis' as const;
  readonly client: Redis;
  private readonly prefix: string;
  private readonly log: Logger;
  private readonly readyWaitMs: number;
  private lastErrorLog = 0;
  private suppressed = 0;
  private closed = false;

  constructor(cfg: RedisStateConfig, opts: RedisStoreOptions) {
    this.prefix = cfg.keyPrefix ?? DEFAULT_KEY_PREFIX;
    this.log = opts.logger.child({ component: 'state', store: 'redis' });
    this.readyWaitMs = opts.readyWaitMs ?? READY_WAIT_MS;
    this.client = new Redis(cfg.url, {
      lazyConnect: false,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      // 0 would mean "no timeout" to ioredis: a request must never wait on a hung Redis.
      commandTimeout: Math.max(1, cfg.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS),
      connectTimeout: 5000,
      retryStrategy: (times) => Math.min(times * 100, 2000),
    });
    // EVALSHA, and EVAL once when Redis answers NOSCRIPT (after a restart or SCRIPT FLUSH): ioredis does both.
    this.client.defineCommand('portcullisRateLimit', { lua: RATE_LIMIT_LUA });
    // Without an 'error' listener an EventEmitter error would crash the process.
    this.client.on('error', (err: Error) => this.logError(err));
    this.client.on('ready', () => { if (this.suppressed > 0 || this.lastErrorLog > 0) this.log.info('redis state store connected'); });
  }

  ready(): Promise<void> {
    if (this.client.status === 'ready') return Promise.resolve();
    return new Promise<void>((resolve) => {
      const onReady = (): void => { clearTimeout(timer); resolve(); };
      const timer = setTimeout(() => {
        this.client.off('ready', onReady);
        this.log.warn({ waitedMs: this.readyWaitMs }, 'redis state store not reachable yet; operations fail (closed) until it is');
        resolve();
      }, this.readyWaitMs);
      this.client.once('ready', onReady);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.client.status === 'ready') {
      try { await this.client.quit(); return; } catch { /* fall through */ }
    }
    this.client.disconnect();
  }

  async claimOnce(key: string, ttlMs: number): Promise<boolean> {
    const r = await this.client.set(redisKey(this.prefix, key), '1', 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX');
    return r === 'OK';
  }

  rateLimit(checks: readonly RateCheck[]): Promise<RateResult> {
    const n = checks.length;
    const args: (string | number)[] = new Array<string | number>(n * 7);
    for (let i = 0; i < n; i++) {
      const c = checks[i]!;
      args[i] = redisKey(this.prefix, 'rl:' + c[1]);
      const j = n + i * 6;
      args[j] = c[0]; args[j + 1] = 0; args[j + 2] = c[2]; args[j + 3] = c[3]; args[j + 4] = c[4]; args[j + 5] = c[5];
    }
    return (this.client as unknown as RateLimitCommand).portcullisRateLimit(n, ...args);
  }

  private logError(err: Error): void {
    const now = Date.now();
    if (now - this.lastErrorLog < ERROR_LOG_INTERVAL_MS) { this.suppressed++; return; }
    // The message only (e.g. "connect ECONNREFUSED 10.0.0.5:6379"): never the URL, which may carry a password.
    this.log.warn({ err: err.message, ...(this.suppressed > 0 ? { suppressed: this.suppressed } : {}) }, 'redis state store error');
    this.lastErrorLog = now;
    this.suppressed = 0;
  }
}
