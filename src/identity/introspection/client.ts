// OAuth 2.0 Token Introspection (RFC 7662) for opaque access tokens.
//
// IntrospectionClient (a long-lived Service per configured server): POSTs
// `token=…&token_type_hint=access_token` with client authentication — client_secret_basic (RFC 6749
// 2.3.1: id and secret form-urlencoded, then base64) or client_secret_post — within timeoutMs.
//
// Introspector (per configuration generation, since identities carry consumer data): validates the
// answer and caches it under the token's SHA-256 —
//   active   → identity, cached until min(exp, now + cacheMaxSec)
//   inactive, expired, wrong iss/aud, or a 400 answer (the server will not introspect this token)
//            → 401, cached for negativeCacheSec (a flood of bad tokens costs one call per token per
//              window, not one per request)
//   timeout, network error, non-200, bad JSON → 503 `introspection-unavailable`: fail closed, not cached
// Concurrent requests with the same token share one call. The token is never logged.
import type { Agent } from 'undici';
import type { IdentityEnv } from '../env.js';
import type { IntrospectionConfig } from '../schema.js';
import type { Identity } from '../identity.js';
import type { AuthFailure, AuthOutcome } from '../failure.js';
import type { Service } from '../../services/services.js';
import { GenerationLocal, serviceKey } from '../../services/services.js';
import type { Logger } from '../../observability/logger.js';
import type { ConsumerDirectory } from '../consumer.js';
import { VerificationCache } from '../verification-cache.js';
import { fetchJson, idpAgent, IdpFetchError, isObject } from '../jwt/fetch.js';
import { claimAt, mergeRoles, scopesOf, stringList } from '../claims.js';

/** An introspection answer is a small JSON object. */
const MAX_REPLY_BYTES = 64 * 1024;
const LOG_EVERY_MS = 60_000;
const DEFAULT_CACHE_ENTRIES = 10_000;

export type IntrospectionReply =
  | { readonly ok: true; readonly body: Readonly<Record<string, unknown>> }
  /** 400: the server would not introspect this token (e.g. a JWT at a server that only knows opaque ones) */
  | { readonly ok: false; readonly rejected: true }
  | { readonly ok: false; readonly rejected?: undefined; readonly error: string };

/** application/x-www-form-urlencoded encoding of one value. */
/** RFC 6750 b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

const REJECTED: IntrospectionReply = Object.freeze({ ok: false, rejected: true });

function formEncode(v: string): string {
  return new URLSearchParams([['', v]]).toString().slice(1);
}

export class IntrospectionClient implements Service {
  /** introspection calls made (tests, metrics) */
  calls = 0;
  private readonly agent: Agent | undefined;
  private readonly headers: Record<string, string>;
  private readonly bodySuffix: string;
  private readonly timeoutMs: number;
  private lastLogAt = -Infinity;

  constructor(readonly name: string, private readonly cfg: IntrospectionConfig, baseDir: string, private readonly logger: Logger) {
    this.agent = idpAgent(cfg.ca, baseDir);
    this.timeoutMs = cfg.timeoutMs ?? 2000;
    this.headers = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
    if ((cfg.clientAuth ?? 'client_secret_basic') === 'client_secret_basic') {
      this.headers.authorization = `Basic ${Buffer.from(`${formEncode(cfg.clientId)}:${formEncode(cfg.clientSecret)}`).toString('base64')}`;
      this.bodySuffix = '&token_type_hint=access_token';
    } else {
      this.bodySuffix = `&token_type_hint=access_token&client_id=${formEncode(cfg.clientId)}&client_secret=${formEncode(cfg.clientSecret)}`;
    }
  }

  async ready(): Promise<void> {}

  async close(): Promise<void> { await this.agent?.close().catch(() => {}); }

  /** One introspection call. Never rejects: transport and server failures come back as { ok: false }. */
  async introspect(token: string): Promise<IntrospectionReply> {
    this.calls++;
    try {
      const reply = await fetchJson(this.cfg.endpoint, {
        method: 'POST',
        headers: this.headers,
        body: `token=${formEncode(token)}${this.bodySuffix}`,
        timeoutMs: this.timeoutMs,
        maxBytes: MAX_REPLY_BYTES,
        dispatcher: this.agent,
      });
      if (reply.status === 400) return REJECTED;
      if (reply.status !== 200) {
        throw new IdpFetchError(reply.status === 401 || reply.status === 403
          ? `introspection endpoint refused the gateway's client credentials (${reply.status})`
          : `introspection endpoint answered ${reply.status}`);
      }
      if (!isObject(reply.json)) throw new IdpFetchError('introspection answer is not a JSON object');
      return { ok: true, body: reply.json };
    } catch (err) {
      const message = err instanceof IdpFetchError ? err.message : 'unexpected error';
      const now = Date.now();
      if (now - this.lastLogAt >= LOG_EVERY_MS) {
        this.lastLogAt = now;
        this.logger.error({ event: 'introspection-failed', server: this.name, error: message }, 'token introspection failed; requests are refused (503) until it works');
      }
      return { ok: false, error: message };
    }
  }
}

export interface IntrospectorOptions {
  /** clock for tests (ms epoch) */
  readonly now?: () => number;
}

/** Validation, cache and identity over an IntrospectionClient (per configuration generation). */
/** Introspection calls in flight per server per process; more new tokens at once get 503 (retry). */
export const MAX_INTROSPECTION_CALLS = 100;

export class Introspector {
  readonly cache: VerificationCache<AuthOutcome>;
  /**
   * Refusals live apart from accepted tokens: a flood of junk tokens fills this one only, never evicts a
   * client's valid token (which would send every valid token back to the server as well).
   */
  readonly negative: VerificationCache<AuthOutcome>;
  private readonly inflight = new Map<string, Promise<AuthOutcome>>();
  private readonly maxTokenBytes: number;
  private readonly cacheMaxMs: number;
  private readonly negativeMs: number;
  private readonly audiences: ReadonlySet<string> | undefined;
  private readonly fail: ReturnType<typeof introspectionFailures>;

  constructor(
    readonly name: string,
    private readonly cfg: IntrospectionConfig,
    readonly client: IntrospectionClient,
    private readonly consumers: ConsumerDirectory,
    cacheEntries: number,
    private readonly now: () => number = Date.now,
  ) {
    this.cache = new VerificationCache(cacheEntries);
    this.negative = new VerificationCache(Math.max(64, cacheEntries >> 2));
    this.maxTokenBytes = cfg.maxTokenBytes ?? 4096;
    this.cacheMaxMs = (cfg.cacheMaxSec ?? 300) * 1000;
    this.negativeMs = (cfg.negativeCacheSec ?? 10) * 1000;
    this.audiences = cfg.audiences !== undefined ? new Set(cfg.audiences) : undefined;
    this.fail = introspectionFailures(name);
  }

  /** Synchronous from the cache (or for an oversized token); otherwise one (shared) introspection call. */
  introspect(token: string): AuthOutcome | Promise<AuthOutcome> {
    if (token.length > this.maxTokenBytes) return this.fail.tooLarge;
    const hash = VerificationCache.keyOf(token);
    const nowMs = this.now();
    const hit = this.cache.get(hash, nowMs) ?? this.negative.get(hash, nowMs);
    if (hit !== undefined) return hit;
    if (!B64TOKEN.test(token)) return this.fail.malformed;
    const pending = this.inflight.get(hash);
    if (pending !== undefined) return pending;
    // a flood of distinct tokens must not become a flood of calls to the authorization server
    if (this.inflight.size >= MAX_INTROSPECTION_CALLS) return this.fail.unavailable;
    const p = this.call(token, hash).finally(() => this.inflight.delete(hash));
    this.inflight.set(hash, p);
    return p;
  }

  private async call(token: string, hash: string): Promise<AuthOutcome> {
    const reply = await this.client.introspect(token);
    if (!reply.ok && reply.rejected !== true) return this.fail.unavailable;
    const nowMs = this.now();
    const out = reply.ok ? this.judge(reply.body, nowMs) : this.fail.rejected;
    if (out.ok && reply.ok) {
      const exp = reply.body.exp;
      const until = Math.min(typeof exp === 'number' ? exp * 1000 : Infinity, nowMs + this.cacheMaxMs);
      if (until > nowMs) this.cache.set(hash, out, until);
    } else if (this.negativeMs > 0) {
      this.negative.set(hash, out, nowMs + this.negativeMs);
    }
    return out;
  }

  private judge(body: Readonly<Record<string, unknown>>, nowMs: number): AuthOutcome {
    const f = this.fail;
    if (body.active !== true) return f.inactive;
    const nowSec = nowMs / 1000;
    if (body.exp !== undefined && (typeof body.exp !== 'number' || body.exp <= nowSec)) return f.expired;
    if (typeof body.nbf === 'number' && body.nbf > nowSec) return f.notYetValid;
    if (this.cfg.issuer !== undefined && body.iss !== this.cfg.issuer) return f.issuer;
    if (this.audiences !== undefined) {
      const aud = stringList(typeof body.aud === 'string' ? [body.aud] : body.aud);
      if (!aud.some((a) => this.audiences!.has(a))) return f.audience;
    }
    if (body.token_type === 'refresh_token') return f.notAccessToken;
    const cnf = body.cnf;
    // a DPoP-bound token (RFC 9449 §6.2) must not be usable as a bearer token
    if (isObject(cnf) && typeof cnf.jkt === 'string') return f.boundAsBearer;

    const subject = claimAt(body, this.cfg.subjectClaim ?? 'sub');
    const sub = typeof subject === 'string' && subject !== '' ? subject : undefined;
    const consumerValue = claimAt(body, this.cfg.consumerClaim ?? 'client_id');
    const c = typeof consumerValue === 'string' ? this.consumers.get(consumerValue) : undefined;
    let roles = stringList(this.cfg.rolesClaim !== undefined ? claimAt(body, this.cfg.rolesClaim) : undefined);
    if (c !== undefined) roles = mergeRoles(roles, c.roles);
    const clientId = typeof body.client_id === 'string' && body.client_id !== '' ? body.client_id : undefined;
    const identity: Identity = Object.freeze({
      id: c?.id ?? sub ?? clientId ?? this.name,
      kind: 'introspection',
      ...(sub !== undefined ? { subject: sub } : {}),
      ...(typeof body.iss === 'string' ? { issuer: body.iss } : {}),
      ...(c !== undefined ? { consumer: c.id, metadata: c.metadata } : {}),
      roles: Object.freeze(roles),
      scopes: Object.freeze(scopesOf(body)),
      claims: Object.freeze({ ...body }),
    });
    return Object.freeze({ ok: true as const, identity });
  }
}

function introspectionFailures(server: string) {
  const f = (reason: string, description: string, status: 401 | 503 = 401): AuthFailure =>
    Object.freeze({ ok: false as const, status, reason, error: 'invalid_token' as const, description, credentialId: server });
  return {
    inactive: f('token-inactive', 'the token is not active'),
    rejected: f('token-rejected', 'the token is not valid'),
    expired: f('token-expired', 'the token has expired'),
    notYetValid: f('token-not-yet-valid', 'the token is not valid yet'),
    issuer: f('token-issuer-mismatch', 'the token issuer is not accepted here'),
    audience: f('token-audience-mismatch', 'the token is not meant for this API'),
    notAccessToken: f('token-not-access-token', 'the token is not an access token'),
    boundAsBearer: f('dpop-token-as-bearer', 'this token is DPoP-bound and cannot be used as a bearer token'),
    tooLarge: f('token-too-large', 'the token is too large'),
    malformed: f('token-malformed', 'the token is malformed'),
    unavailable: f('introspection-unavailable', 'the token cannot be verified right now; try again later', 503),
  } as const;
}

/** Introspectors of one configuration generation (on its ServiceScope), shared by the routes that name the same server. */
const INTROSPECTORS = new GenerationLocal<Map<string, Introspector>>('introspectors');

/** The introspector of server `name` for this generation (its HTTP client comes from the service pool). */
export function introspector(name: string, env: IdentityEnv, opts: IntrospectorOptions = {}): Introspector {
  const cfg = env.config.introspection?.[name];
  if (cfg === undefined) throw new Error(`unknown introspection server ${JSON.stringify(name)} (define it under identity.introspection)`);
  const byName = env.services.local(INTROSPECTORS, () => new Map<string, Introspector>());
  const have = opts.now === undefined ? byName.get(name) : undefined;
  if (have !== undefined) return have;
  const client = env.services.use(serviceKey('introspection', name, cfg, env.baseDir), () => new IntrospectionClient(name, cfg, env.baseDir, env.logger));
  const i = new Introspector(name, cfg, client, env.consumers, env.config.verificationCache?.maxEntries ?? DEFAULT_CACHE_ENTRIES, opts.now);
  if (opts.now === undefined) byName.set(name, i);
  return i;
}
