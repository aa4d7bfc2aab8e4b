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
import type { StateStore } from './types.js';
import type { Logger } from '../observability/logger.js';

type RedisStateConfig = Extract<StateConfig, { type: 'redis' }>;

export const DEFAULT_KEY_PREFIX = 'portcullis:';
export const DEFAULT_COMMAND_TIMEOUT_MS = 200;
/** how long ready() waits for a first connection before letting the gateway start anyway */
const READY_WAIT_MS = 2000;
/** at most one Redis error log line per this interval (a down Redis would otherwise log per request) */
const ERROR_LOG_INTERVAL_MS = 10_000;

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

  private logError(err: Error): void {
    const now = Date.now();
    if (now - this.lastErrorLog < ERROR_LOG_INTERVAL_MS) { this.suppressed++; return; }
    // The message only (e.g. "connect ECONNREFUSED 10.0.0.5:6379"): never the URL, which may carry a password.
    this.log.warn({ err: err.message, ...(this.suppressed > 0 ? { suppressed: this.suppressed } : {}) }, 'redis state store error');
    this.lastErrorLog = now;
    this.suppressed = 0;
  }
}
