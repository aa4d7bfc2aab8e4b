// Response cache stage (order 120, last before the proxy). Opt-in per route. GET/HEAD responses are
// stored following RFC 9111 for a shared cache, under a key that includes the caller's identity unless
// the route is `public`; hits are answered here (through the response writer) and never reach the upstream. Concurrent
// misses of one key wait for the first one's response (coalescing). See docs/caching.md.
import type { IncomingHttpHeaders } from 'node:http';
import type { CompiledStage, StageModule, CompileEnv } from '../../pipeline/types.js';
import type { RequestContext, ResponseTap, Identity } from '../../pipeline/context.js';
import type { HeaderValue } from '../../pipeline/header-list.js';
import { encodePathForUpstream } from '../../routing/normalize.js';
import { sendBody, unreadBody } from '../../server/respond.js';
import { GenerationLocal, serviceKey } from '../../services/services.js';
import { CacheSchema, CacheGlobalSchema, DEFAULT_CACHEABLE_STATUS, DEFAULT_COALESCE_WAIT_MS, DEFAULT_MAX_OBJECT_BYTES, type CacheConfig, type CacheGlobalConfig } from './schema.js';
import { CachedResponse, httpDate, normalizeHeaderValue, parseCacheControl, variantOf } from './entry.js';
import { MemoryCacheStore, type CacheStore } from './store.js';
import { registerPurgeTarget } from '../../services/cache-purge.js';
import { RedisCacheStore } from './redis-store.js';
import { secretRequestHeaders } from '../../config/credentials.js';
import { trackStore } from './cluster.js';

export const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;
export const DEFAULT_REDIS_PREFIX = 'portcullis:cache:';
const DEFAULT_REDIS_TIMEOUT_MS = 100;

/** Cache-Status (RFC 9211) values; the cache's name is `portcullis`. */
const ST_METHOD = 'portcullis; fwd=method';
const ST_REQUEST = 'portcullis; fwd=request';
const ST_BYPASS = 'portcullis; fwd=bypass';
const ST_MISS = 'portcullis; fwd=uri-miss';
const ST_STORED = 'portcullis; fwd=uri-miss; stored';
const ST_REQUEST_STORED = 'portcullis; fwd=request; stored';

/** A response the cache only labels (bypass, HEAD miss): nothing to observe. Shared, stateless. */
class LabelTap implements ResponseTap {
  constructor(readonly cacheStatus: string) {}
  onHead(): void { /* label only */ }
  onData(): void { /* label only */ }
  onEnd(): void { /* label only */ }
}
const TAP_METHOD = new LabelTap(ST_METHOD);
const TAP_REQUEST = new LabelTap(ST_REQUEST);
const TAP_BYPASS = new LabelTap(ST_BYPASS);
const TAP_MISS = new LabelTap(ST_MISS);

/** Compiled, immutable per-route settings. */
interface RoutePolicy {
  readonly routeId: string;
  readonly store: CacheStore;
  readonly isPublic: boolean;
  readonly methods: ReadonlySet<string>;
  readonly keyHeaders: readonly string[];
  readonly statusCodes: ReadonlySet<number>;
  readonly ttlSeconds: number;
  readonly maxTtlSeconds: number;
  readonly maxObjectBytes: number;
  readonly coalesce: boolean;
  readonly coalesceWaitMs: number;
  readonly statusHeader: string;
  /** credential headers of this configuration: never sent to a shared store, never a Vary that may be stored */
  readonly secretHeaders: ReadonlySet<string>;
  /** misses in flight per primary key (coalescing) */
  readonly inflight: Map<string, Group>;
}

/** Requests waiting for the leader of a key. */
class Group {
  readonly waiters: (() => void)[] = [];
  timer: NodeJS.Timeout | undefined = undefined;
}

function releaseGroup(p: RoutePolicy, primary: string, g: Group): void {
  if (p.inflight.get(primary) === g) p.inflight.delete(primary);
  if (g.timer !== undefined) { clearTimeout(g.timer); g.timer = undefined; }
  const w = g.waiters.splice(0);
  for (const wake of w) wake();
}

/**
 * Observes one proxied miss: decides at the head whether the response may be stored, collects the body,
 * stores it when complete, and wakes coalesced requests (on completion, or when the exchange ends otherwise).
 */
class MissTap implements ResponseTap {
  cacheStatus: string;
  private chunks: Buffer[] | undefined = undefined;
  private bytes = 0;
  private status = 0;
  private headers: (string | string[])[] = [];
  private vary = '';
  private expiresAt = 0;
  private initialAge = 0;
  private settled = false;

  constructor(
    private readonly p: RoutePolicy,
    private readonly ctx: RequestContext,
    private readonly primary: string,
    /** the coalescing group this request leads, if any */
    private readonly group: Group | undefined,
    private readonly label: string,
    private readonly labelStored: string,
  ) {
    this.cacheStatus = label;
  }

  onHead(status: number, flat: readonly (string | string[] | number)[]): void {
    const p = this.p;
    if (!p.statusCodes.has(status)) return;
    let cc: string | string[] | number | undefined, vary: string | string[] | number | undefined;
    let expires: string | string[] | number | undefined, date: string | string[] | number | undefined, age: string | string[] | number | undefined;
    let length = -1;
    const keep: (string | string[])[] = [];
    for (let i = 0; i < flat.length; i += 2) {
      const name = flat[i] as string;
      const v = flat[i + 1]!;
      switch (name) {
        case 'set-cookie': return; // never replay one client's cookies (docs/caching.md)
        case 'cache-control': cc = v; break;
        case 'vary': vary = v; break;
        case 'expires': expires = v; break;
        case 'date': date = v; break;
        case 'age': age = v; continue;
        case 'content-length': length = Number(v); continue;
        default: break;
      }
      keep.push(name, typeof v === 'number' ? String(v) : v);
    }
    if (length > p.maxObjectBytes) return;
    const d = parseCacheControl(cc);
    // no-cache would need revalidation on every use, which this cache does not do: not stored.
    if (d.noStore || d.noCache) return;
    // `private`: not for a shared cache. A per-identity key makes the cache private to the caller.
    if (d.private && p.isPublic) return;
    const varyList = varyNames(vary, p.secretHeaders);
    if (varyList === undefined) return;
    const now = Date.now();
    const dateMs = httpDate(date);
    let lifetime: number;
    if (d.sMaxAge !== undefined) lifetime = d.sMaxAge;
    else if (d.maxAge !== undefined) lifetime = d.maxAge;
    else if (expires !== undefined) {
      // An invalid Expires (e.g. "0") means already expired (RFC 9111 5.3).
      const e = httpDate(expires);
      lifetime = e === undefined ? 0 : Math.floor((e - (dateMs ?? now)) / 1000);
    } else lifetime = p.ttlSeconds;
    if (lifetime > p.maxTtlSeconds) lifetime = p.maxTtlSeconds;
    const ageValue = typeof age === 'string' && /^\d{1,10}$/.test(age) ? Number(age) : 0;
    const apparent = dateMs === undefined ? 0 : Math.max(0, Math.floor((now - dateMs) / 1000));
    this.initialAge = Math.max(ageValue, apparent);
    const remaining = lifetime - this.initialAge;
    if (remaining <= 0) return;
    this.expiresAt = now + remaining * 1000;
    this.status = status;
    this.headers = keep;
    this.vary = varyList;
    this.chunks = [];
    this.cacheStatus = this.labelStored;
  }

  onData(chunk: Buffer): void {
    const c = this.chunks;
    if (c === undefined) return;
    this.bytes += chunk.length;
    if (this.bytes > this.p.maxObjectBytes) { this.chunks = undefined; return; }
    c.push(chunk);
  }

  onEnd(): void {
    const c = this.chunks;
    if (c !== undefined && this.ctx.req.method === 'GET') {
      this.chunks = undefined;
      const body = c.length === 1 ? c[0]! : Buffer.concat(c, this.bytes);
      const entry = new CachedResponse(this.status, this.headers, body, Date.now(), this.expiresAt, this.initialAge);
      this.p.store.store(this.primary, this.vary, variantOf(this.vary, this.ctx.req.headers), entry);
    }
    this.settle();
  }

  /** The exchange is over (stored or not): coalesced requests look again, and go upstream on a miss. */
  settle(): void {
    if (this.settled) return;
    this.settled = true;
    this.chunks = undefined;
    if (this.group !== undefined) releaseGroup(this.p, this.primary, this.group);
  }
}

/** The Vary list as comma-joined lower-case names ('' = none), or undefined when it forbids storing. */
function varyNames(v: string | string[] | number | undefined, secret: ReadonlySet<string>): string | undefined {
  if (v === undefined) return '';
  const names: string[] = [];
  for (const part of (Array.isArray(v) ? v.join(',') : String(v)).split(',')) {
    const n = part.trim().toLowerCase();
    if (n === '') continue;
    // `*`: never matches. Credentials and cookies: only the identity may select a response.
    if (n === '*' || secret.has(n)) return undefined;
    if (!names.includes(n)) names.push(n);
  }
  return names.join(',');
}

/** Cache-key part for the caller: the consumer when there is one, else the credential's subject. */
function identityScope(id: Identity): string {
  if (id.consumer !== undefined) return `c:${encodeURIComponent(id.consumer)}`;
  return `${id.kind}:${encodeURIComponent(id.issuer ?? '')}:${encodeURIComponent(id.id)}`;
}

/**
 * The primary cache key (docs/caching.md): `<path>[?<query>] <host> <route id>[ <header>=<value>...] <scope>`
 * — path first so an operator can purge by path prefix. Scope: `*` on public routes, `anon` without a
 * verified identity (none, or the route's `anonymous` one), else the identity (identityScope).
 */
/** No identity, or the shared `anonymous` one: nothing tells one caller from another. */
function isUnverified(ctx: RequestContext): boolean {
  return ctx.identity === undefined || ctx.identity.kind === 'anonymous';
}

export function primaryKey(p: RoutePolicy, ctx: RequestContext, headers: IncomingHttpHeaders): string {
  const path = encodePathForUpstream(ctx.path);
  let key = `${ctx.query === '' ? path : `${path}?${ctx.query}`} ${ctx.plan!.host.toLowerCase()} ${p.routeId}`;
  for (const h of p.keyHeaders) key += ` ${h}=${encodeURIComponent(normalizeHeaderValue(headers[h]) ?? '')}`;
  return `${key} ${p.isPublic ? '*' : isUnverified(ctx) ? 'anon' : identityScope(ctx.identity!)}`;
}

/** Writes a stored response to the client through the response writer, as the proxy would have. */
function serveHit(ctx: RequestContext, e: CachedResponse, now: number): void {
  const flat: HeaderValue[] = e.headers.slice();
  flat.push('age', String(e.age(now)), 'via', ctx.runtime!.via);
  ctx.responseTap = new LabelTap(`portcullis; hit; ttl=${Math.max(0, Math.floor((e.expiresAt - now) / 1000))}`);
  // A request body we will not read must not linger on a keep-alive connection (the writer's rule).
  sendBody(ctx, e.status, flat, e.body, unreadBody(ctx));
}

/** A miss goes upstream with a tap that may store the response; a GET may lead a coalescing group. */
function miss(p: RoutePolicy, ctx: RequestContext, primary: string, mayLead: boolean, refresh: boolean): undefined | Promise<undefined> {
  if (ctx.req.method !== 'GET') { ctx.responseTap = TAP_MISS; return undefined; }
  let group: Group | undefined;
  if (mayLead && p.coalesce && !refresh) {
    const g = p.inflight.get(primary);
    if (g !== undefined) return follow(p, ctx, primary, g);
    group = new Group();
    p.inflight.set(primary, group);
    // Bounded wait: if the leader is slow, its followers go upstream themselves.
    group.timer = setTimeout(releaseGroup, p.coalesceWaitMs, p, primary, group);
    group.timer.unref();
  }
  ctx.responseTap = refresh
    ? new MissTap(p, ctx, primary, group, ST_REQUEST, ST_REQUEST_STORED)
    : new MissTap(p, ctx, primary, group, ST_MISS, ST_STORED);
  return undefined;
}

/** Waits for the leader, then looks again: a hit is served, a miss goes upstream (without coalescing again). */
function follow(p: RoutePolicy, ctx: RequestContext, primary: string, g: Group): Promise<undefined> {
  return new Promise<void>((resolve) => { g.waiters.push(resolve); }).then(() => {
    if (ctx.res!.destroyed) return undefined;
    const now = Date.now();
    const r = p.store.lookup(primary, ctx.req.headers, now, p.secretHeaders);
    if (r instanceof Promise) return r.then((e) => afterLookup(p, ctx, primary, e, now, false));
    return afterLookup(p, ctx, primary, r, now, false);
  });
}

function afterLookup(p: RoutePolicy, ctx: RequestContext, primary: string, e: CachedResponse | undefined, now: number, mayLead: boolean): undefined | Promise<undefined> {
  if (e !== undefined) {
    if (!ctx.res!.destroyed) serveHit(ctx, e, now);
    return undefined;
  }
  return miss(p, ctx, primary, mayLead, false);
}

function onRequest(p: RoutePolicy, ctx: RequestContext): undefined | Promise<undefined> {
  const method = ctx.req.method!;
  if (!p.methods.has(method)) { ctx.responseTap = TAP_METHOD; return undefined; }
  const headers = ctx.req.headers;
  // Credentials the gateway did not check: the upstream may answer per caller, which the key cannot tell
  // apart. The route's `anonymous` identity is no check either: every anonymous caller shares it.
  if (!p.isPublic && isUnverified(ctx) && (headers.authorization !== undefined || headers.cookie !== undefined)) {
    ctx.responseTap = TAP_BYPASS;
    return undefined;
  }
  let refresh = false;
  const rcc = headers['cache-control'];
  if (rcc !== undefined || headers.pragma !== undefined) {
    const d = parseCacheControl(rcc ?? (headers.pragma?.toLowerCase().includes('no-cache') ? 'no-cache' : undefined));
    if (d.noStore) { ctx.responseTap = TAP_REQUEST; return undefined; }
    // no-cache / max-age=0: a stored response may not be used without revalidation; fetch and store anew.
    if (d.noCache || d.maxAge === 0) refresh = true;
  }
  const primary = primaryKey(p, ctx, headers);
  if (refresh) return miss(p, ctx, primary, false, true);
  const now = Date.now();
  const r = p.store.lookup(primary, headers, now, p.secretHeaders);
  if (r instanceof Promise) return r.then((e) => afterLookup(p, ctx, primary, e, now, true));
  return afterLookup(p, ctx, primary, r, now, true);
}

/** Once per configuration generation (on its ServiceScope), shared by its cached routes. */
const SECRET_HEADERS = new GenerationLocal<ReadonlySet<string>>('cache secret request headers');

function storeFor(g: CacheGlobalConfig, env: CompileEnv): CacheStore {
  const services = env.identity.services;
  if (g.store === 'redis') {
    const state = env.config.state;
    const url = g.redis?.url ?? (state?.type === 'redis' ? state.url : undefined);
    if (url === undefined) throw new Error('caching.store is redis but neither caching.redis.url nor a redis `state:` block gives a URL (a redis-cluster state is not used for the cache)');
    const opts = { url, keyPrefix: g.redis?.keyPrefix ?? DEFAULT_REDIS_PREFIX, commandTimeoutMs: g.redis?.commandTimeoutMs ?? DEFAULT_REDIS_TIMEOUT_MS };
    return services.use(serviceKey('cache', 'redis', opts), () => new RedisCacheStore({ ...opts, logger: env.identity.logger }));
  }
  const maxBytes = g.maxBytes ?? DEFAULT_MAX_BYTES;
  return services.use(serviceKey('cache', 'memory', maxBytes), () => {
    const s = new MemoryCacheStore(maxBytes);
    trackStore(s);
    return s;
  });
}

export function compileCache(cfg: CacheConfig, env: CompileEnv): CompiledStage {
  const g = env.config.caching ?? {};
  const store = storeFor(g, env);
  registerPurgeTarget(env.identity.services, store);
  const statusHeader = (g.cacheStatusHeader ?? 'Cache-Status').toLowerCase();
  const p: RoutePolicy = {
    routeId: env.routeId,
    store,
    isPublic: cfg.public ?? false,
    methods: new Set(cfg.methods ?? ['GET', 'HEAD']),
    keyHeaders: (cfg.keyHeaders ?? []).map((h) => h.toLowerCase()),
    statusCodes: new Set(cfg.statusCodes ?? DEFAULT_CACHEABLE_STATUS),
    ttlSeconds: cfg.ttlSeconds ?? 0,
    maxTtlSeconds: cfg.maxTtlSeconds ?? Number.MAX_SAFE_INTEGER,
    maxObjectBytes: cfg.maxObjectBytes ?? DEFAULT_MAX_OBJECT_BYTES,
    coalesce: cfg.coalesce ?? true,
    coalesceWaitMs: cfg.coalesceWaitMs ?? DEFAULT_COALESCE_WAIT_MS,
    statusHeader,
    secretHeaders: env.identity.services.local(SECRET_HEADERS, () => secretRequestHeaders(env.config.routes)),
    inflight: new Map(),
  };
  return {
    onRequest: (ctx) => onRequest(p, ctx),
    onResponse: statusHeader === ''
      ? undefined
      : (ctx, _status, headers) => {
          const t = ctx.responseTap;
          if (t instanceof LabelTap || t instanceof MissTap) headers.set(statusHeader, t.cacheStatus);
        },
    onDone(ctx) {
      const t = ctx.responseTap;
      if (t instanceof MissTap) t.settle();
    },
  };
}

export const cacheStage: StageModule<'cache', typeof CacheSchema, 'caching', typeof CacheGlobalSchema> = {
  name: 'cache',
  order: 120,
  configKey: 'cache',
  schema: CacheSchema,
  global: { key: 'caching', schema: CacheGlobalSchema },
  // a tunnel has no response to store or replay
  upgrades: 'incompatible',
  docs: 'docs/caching.md',
  check: () => [],
  compile: compileCache,
};
