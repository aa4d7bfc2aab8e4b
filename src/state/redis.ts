// The Redis state store: shared by every worker of every node pointed at the same Redis.
//
// Failure behaviour: commands fail fast instead of queueing while Redis is down (enableOfflineQueue:
// false), a command that takes longer than commandTimeoutMs is a failure, and ioredis keeps reconnecting
// in the background. A failure rejects the operation; callers fail closed (DPoP replay check → 503-style
// refusal), the process never crashes and no request waits longer than the command timeout.
//
// Key names: `<keyPrefix>{<logical key>}`. The braces are a Redis Cluster hash tag: only the part inside
// them picks the slot, so keys derived from one logical key would always live on one node and a Lua
// script could touch them together (a rate-limit key is one hash today: fields a, b, c).
// `{`, `}` and `%` inside a logical key are percent-encoded so a key can never end the tag early.
import { Cluster, Redis, type ClusterNode, type RedisOptions } from 'ioredis';
import calculateSlot from 'cluster-key-slot';
import { parseRedisNodeUrl } from './redis-url.js';
import type { StateConfig } from './schema.js';
import type { RateCheck, RateResult, StateStore } from './types.js';
import type { Logger } from '../observability/logger.js';

type RedisStateConfig = Extract<StateConfig, { type: 'redis' | 'redis-cluster' }>;

export const DEFAULT_KEY_PREFIX = 'portcullis:';
export const DEFAULT_COMMAND_TIMEOUT_MS = 200;
/** how long ready() waits for a first connection before letting the gateway start anyway */
const READY_WAIT_MS = 2000;
/** at most one Redis error log line per this interval (a down Redis would otherwise log per request) */
const ERROR_LOG_INTERVAL_MS = 10_000;

/**
 * src/state/rate-algorithms.ts decide(), in Lua, for a batch of requests: the rate-limit calls of
 * one event-loop turn travel in one script call (one round trip however many requests wait on it).
 * Each request's checks are decided and counted in order, exactly as if each were its own atomic call:
 * a request's checks are counted only when all of them pass, and the next request sees that count.
 * Redis's clock (TIME) decides, so every gateway process sharing this Redis agrees on window edges.
 * KEYS = one hash per check (fields a, b, c), the requests' checks one after another;
 * ARGV[1] = the numbers as one JSON array: per request n (its number of checks), then 5 per check (alg,
 * limit, windowMs, burst, maxDelayMs) mirroring RateCheck. One string rather than one argument per
 * number: ioredis's per-argument cost was most of the client's work; JSON because Redis's C cjson
 * decodes it faster than a Lua loop splits it (12 requests: 20 µs less per call). Returns, per request:
 * allowed, delay, then per check remaining, resetMs, retryMs (integers, ms rounded up).
 */
export const RATE_LIMIT_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local eps = 0.000001
local out = {}
local num = cjson.decode(ARGV[1])
-- per-check scratch, reused by every request of the batch (slots 1..n are rewritten each time)
local na, nb, nc, ttl, oks = {}, {}, {}, {}, {}
local k, p, base = 0, 1, 0
while p <= #num do
  local n = num[p]
  p = p + 1
  out[base + 1], out[base + 2] = 1, 0
  local allowed, delay = 1, 0
  for i = 1, n do
    local alg, limit, w, burst, maxDelay = num[p], num[p + 1], num[p + 2], num[p + 3], num[p + 4]
    p = p + 5
    local v = redis.call('HMGET', KEYS[k + i], 'a', 'b', 'c')
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
          -- the expiry set when this window began still holds: no PEXPIRE
          na[i], nb[i], nc[i], ttl[i] = win, cur + 1, 0, a == win and -1 or start + w - now
        else
          retry = start + w - now
        end
      else
        local f = (now - start) / w
        local est = prev * (1 - f) + cur
        if est + 1 <= limit then
          ok, rem = 1, math.floor(limit - est - 1)
          na[i], nb[i], nc[i], ttl[i] = win, cur + 1, prev, a == win and -1 or start + 2 * w - now
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
    out[base + 3 * i], out[base + 3 * i + 1], out[base + 3 * i + 2] = rem, math.ceil(reset), math.ceil(retry)
  end
  out[base + 1] = allowed
  if allowed == 1 then
    out[base + 2] = math.ceil(delay)
    for i = 1, n do
      redis.call('HSET', KEYS[k + i], 'a', string.format('%.4f', na[i]), 'b', nb[i], 'c', nc[i])
      if ttl[i] >= 0 then redis.call('PEXPIRE', KEYS[k + i], math.max(1, math.ceil(ttl[i]))) end
    end
  else
    -- a refused request consumed nothing: the limits it passed keep the unit it would have used
    for i = 1, n do
      if oks[i] == 1 then out[base + 3 * i] = out[base + 3 * i] + 1 end
    end
  end
  k = k + n
  base = base + 2 + 3 * n
end
return out
`;

/** Most requests per script call: bounds one call's run time on Redis (a bigger turn is split). */
export const RATE_LIMIT_BATCH_MAX = 256;

/**
 * Most commands awaiting a reply on the connection. A Redis that hangs (stopped, partitioned) keeps the
 * connection open: commands time out for their callers but stay queued in ioredis (replies are matched
 * in order) and in the socket's write buffer, so under load memory grew by the request rate for as long
 * as the outage lasted. Past this, operations fail at once without being sent.
 */
export const MAX_PENDING_COMMANDS = 128;

/** Shared by every operation refused while Redis is unreachable: no per-request Error (stack) or ioredis command. */
const NOT_CONNECTED = Object.freeze(new Error('redis state store not connected'));
const BACKLOG_FULL = Object.freeze(new Error('redis state store backlog full (redis not answering)'));

interface RateLimitCommand {
  portcullisRateLimit(numKeys: number, ...keysAndArgv: string[]): Promise<number[]>;
}

interface PendingRateLimit {
  readonly checks: readonly RateCheck[];
  /** the checks' Redis keys, when already computed (Redis Cluster: to find their slots) */
  keys?: readonly string[];
  resolve(r: RateResult): void;
  reject(err: unknown): void;
}

/**
 * Redis Cluster: a script may only touch keys of one hash slot. A request whose limits' keys live in
 * several slots is split into one part per slot, decided by that slot's script call, and the answers are
 * merged in check order: allowed only if every part allowed it. Each part is atomic on its own; across
 * parts, a request refused by one part still counts in the limits of the parts that admitted it.
 */
function splitBySlot(p: PendingRateLimit, keys: readonly string[], slots: readonly number[], into: Map<number, PendingRateLimit[]>): void {
  const bySlot = new Map<number, number[]>();
  for (let i = 0; i < slots.length; i++) {
    const list = bySlot.get(slots[i]!);
    if (list === undefined) bySlot.set(slots[i]!, [i]); else list.push(i);
  }
  const n = p.checks.length;
  const merged: RateResult = new Array<number>(2 + 3 * n).fill(0);
  merged[0] = 1;
  let left = bySlot.size;
  let failed = false;
  for (const [slot, idx] of bySlot) {
    const part: PendingRateLimit = {
      checks: idx.map((i) => p.checks[i]!),
      keys: idx.map((i) => keys[i]!),
      resolve(r) {
        if (r[0] === 0) merged[0] = 0;
        if (r[1]! > merged[1]!) merged[1] = r[1]!;
        for (let j = 0; j < idx.length; j++) {
          const at = 2 + 3 * idx[j]!;
          merged[at] = r[2 + 3 * j]!; merged[at + 1] = r[3 + 3 * j]!; merged[at + 2] = r[4 + 3 * j]!;
        }
        if (--left === 0 && !failed) {
          if (merged[0] === 0) merged[1] = 0;
          p.resolve(merged);
        }
      },
      reject(err) {
        if (failed) return;
        failed = true;
        p.reject(err);
      },
    };
    const group = into.get(slot);
    if (group === undefined) into.set(slot, [part]); else group.push(part);
  }
}

/** ioredis connection options from a redis:// or rediss:// URL (Redis Cluster: the first seed node's). */
function clusterNodeOptions(url: string, index: number): { node: ClusterNode; options: RedisOptions } {
  const a = parseRedisNodeUrl(url);
  // never the URL itself in the message: it may carry a password
  if (a === undefined) throw new Error(`state.nodes[${index}] is not a valid redis:// URL`);
  const options: RedisOptions = {};
  if (a.username !== undefined) options.username = a.username;
  if (a.password !== undefined) options.password = a.password;
  if (a.tls) options.tls = { servername: a.host };
  return { node: { host: a.host, port: a.port }, options };
}

/**
 * ioredis options for a store on the request path (state, response cache): commands fail at once while
 * disconnected (no offline queue), time out after `commandTimeoutMs`, and reconnect in the background.
 */
export function failFastRedisOptions(commandTimeoutMs: number): RedisOptions & { retryStrategy: (times: number) => number } {
  return {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    // 0 would mean "no timeout" to ioredis: a request must never wait on a hung Redis.
    commandTimeout: Math.max(1, commandTimeoutMs),
    connectTimeout: 5000,
    retryStrategy: (times) => Math.min(times * 100, 2000),
    // A command that timed out was already answered (failed) to its caller: after a reconnect it must not
    // run anyway (a rate-limit script would count requests long since refused), nor be held until then.
    autoResendUnfulfilledCommands: false,
  };
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
  readonly client: Redis | Cluster;
  /** Redis Cluster: a script call may only touch one slot's keys */
  private readonly cluster: boolean;
  private readonly prefix: string;
  private readonly log: Logger;
  private readonly readyWaitMs: number;
  private lastErrorLog = 0;
  private suppressed = 0;
  private closed = false;
  private rateQueue: PendingRateLimit[] = [];
  private rateFlushScheduled = false;

  constructor(cfg: RedisStateConfig, opts: RedisStoreOptions) {
    this.prefix = cfg.keyPrefix ?? DEFAULT_KEY_PREFIX;
    this.log = opts.logger.child({ component: 'state', store: 'redis' });
    this.readyWaitMs = opts.readyWaitMs ?? READY_WAIT_MS;
    const { retryStrategy: retry, ...common } = failFastRedisOptions(cfg.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS);
    this.cluster = cfg.type === 'redis-cluster';
    if (cfg.type === 'redis-cluster') {
      const seeds = cfg.nodes.map((url, i) => clusterNodeOptions(url, i));
      this.client = new Cluster(seeds.map((s) => s.node), {
        enableOfflineQueue: false,
        clusterRetryStrategy: retry,
        redisOptions: { ...common, ...seeds[0]!.options },
      });
    } else {
      this.client = new Redis(cfg.url, { ...common, lazyConnect: false, retryStrategy: retry });
    }
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

  /** Undefined when a command may be sent now; else the error to fail with, without sending anything. */
  private unavailable(): Error | undefined {
    const c = this.client;
    if (c.status !== 'ready') return NOT_CONNECTED;
    if (!this.cluster && (c as Redis).commandQueue.length >= MAX_PENDING_COMMANDS) return BACKLOG_FULL;
    return undefined;
  }

  async claimOnce(key: string, ttlMs: number): Promise<boolean> {
    const down = this.unavailable();
    if (down !== undefined) throw down;
    const r = await this.client.set(redisKey(this.prefix, key), '1', 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX');
    return r === 'OK';
  }

  /**
   * Queued, not sent at once: the requests of one event-loop turn share one script call (setImmediate:
   * every request parsed in one I/O poll joins it). Under load that makes one round trip per turn instead
   * of one per request (the socket write and read are most of the cost); an idle gateway adds nothing.
   * Calls are not held back while another is out: waiting for it (to grow the batch) measured slower.
   */
  rateLimit(checks: readonly RateCheck[]): Promise<RateResult> {
    return new Promise<RateResult>((resolve, reject) => {
      this.rateQueue.push({ checks, resolve, reject });
      this.scheduleRateFlush();
    });
  }

  private scheduleRateFlush(): void {
    if (this.rateFlushScheduled) return;
    this.rateFlushScheduled = true;
    setImmediate(this.flushRateLimits);
  }

  private readonly flushRateLimits = (): void => {
    this.rateFlushScheduled = false;
    const queue = this.rateQueue;
    this.rateQueue = [];
    const down = this.unavailable();
    if (down !== undefined) {
      for (const p of queue) p.reject(down);
      return;
    }
    if (this.cluster) { this.sendBySlot(queue); return; }
    this.sendInBatches(queue);
  };

  private sendInBatches(queue: PendingRateLimit[]): void {
    for (let from = 0; from < queue.length; from += RATE_LIMIT_BATCH_MAX) {
      this.sendRateLimits(from === 0 && queue.length <= RATE_LIMIT_BATCH_MAX ? queue : queue.slice(from, from + RATE_LIMIT_BATCH_MAX));
    }
  }

  /** Redis Cluster: one script call per hash slot (pipelined by ioredis to the slots' nodes). */
  private sendBySlot(queue: readonly PendingRateLimit[]): void {
    const groups = new Map<number, PendingRateLimit[]>();
    for (const p of queue) {
      const keys = p.checks.map((c) => redisKey(this.prefix, 'rl:' + c[1]));
      const slots = keys.map((k) => calculateSlot(k));
      if (slots.every((s) => s === slots[0])) {
        p.keys = keys;
        const group = groups.get(slots[0]!);
        if (group === undefined) groups.set(slots[0]!, [p]); else group.push(p);
      } else {
        splitBySlot(p, keys, slots, groups);
      }
    }
    for (const group of groups.values()) this.sendInBatches(group);
  }

  private sendRateLimits(batch: readonly PendingRateLimit[]): void {
    let numKeys = 0;
    for (const p of batch) numKeys += p.checks.length;
    const keys = new Array<string>(numKeys);
    let argv = '[';
    let k = 0;
    for (const p of batch) {
      const cs = p.checks;
      argv += (k === 0 ? '' : ',') + cs.length;
      for (let i = 0; i < cs.length; i++) {
        const c = cs[i]!;
        keys[k++] = p.keys?.[i] ?? redisKey(this.prefix, 'rl:' + c[1]);
        argv += ',' + c[0] + ',' + c[2] + ',' + c[3] + ',' + c[4] + ',' + c[5];
      }
    }
    argv += ']';
    (this.client as unknown as RateLimitCommand).portcullisRateLimit(numKeys, ...keys, argv).then((out) => {
      let o = 0;
      for (const p of batch) {
        const len = 2 + 3 * p.checks.length;
        if (!Array.isArray(out) || out.length < o + len) { p.reject(new Error('malformed rate-limit reply from redis')); continue; }
        p.resolve(out.slice(o, o + len));
        o += len;
      }
    }, (err: unknown) => {
      for (const p of batch) p.reject(err);
    });
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
