// The verification keys of one issuer, as a long-lived Service (shared by configuration generations
// while the issuer's configuration is unchanged). Sources, exactly one per issuer:
//   keys       static: PEM public keys/certificates, public JWKs, or HMAC secrets
//   jwksUri    a JWKS document, fetched and cached
//   discovery  {issuer}/.well-known/openid-configuration → jwks_uri (its `issuer` must match exactly)
//
// Remote sets: cached for the reply's Cache-Control max-age / Expires, clamped to [minRefreshMs,
// maxRefreshMs], and refreshed in the background when that runs out; requests keep the last good set
// meanwhile and for as long as the IdP is down. A token naming a kid we do not have triggers at most one
// refetch per unknownKidCooldownMs (concurrent requests share it), so a key rotation is picked up at
// once while random kids cannot turn the gateway into a fetch amplifier against the IdP.
// ready() resolves after the first fetch attempt whatever its result: one unreachable IdP must not stop
// the gateway (or a reload) from serving every other route. Until keys arrive, that issuer's tokens are
// refused with 503 (fail closed) and the fetch is retried.
//
// Keys are never taken from the token: jku, x5u, jwk and x5c header parameters are ignored, and kid is
// only a Map key into this set.
import type { Agent } from 'undici';
import type { IssuerConfig, JwsAlgorithmName } from '../schema.js';
import type { Service } from '../../services/services.js';
import type { Logger } from '../../observability/logger.js';
import { cacheLifetimeMs, fetchJson, idpAgent, IdpFetchError, isObject } from './fetch.js';
import { algorithmsFor, decodeSecret, importHmacSecret, importPublicJwk, isHmac, pemToPublicJwk, type VerifyKey } from './jwk.js';

/** Tokens without kid: at most this many keys are tried (each try is a signature check). */
export const MAX_KEYS_WITHOUT_KID = 5;
/** A JWKS with more keys than this is truncated (and logged). */
const MAX_JWKS_KEYS = 100;
/** Floor for every refresh interval: a misconfigured 0 must not become a fetch loop. */
const MIN_INTERVAL_MS = 1000;
/** IdP failures are logged at most this often per issuer. */
const LOG_EVERY_MS = 60_000;

type AlgKeys = Map<JwsAlgorithmName, VerifyKey>;

interface KeySet {
  readonly byKid: ReadonlyMap<string, AlgKeys>;
  /** keys that have no kid: tried for a kid we do not know */
  readonly noKid: readonly AlgKeys[];
  /** every key in set order: tried (bounded) for tokens without kid */
  readonly all: readonly AlgKeys[];
}

export type KeyLookup =
  | { readonly kind: 'keys'; readonly keys: readonly VerifyKey[] }
  /** no key with this kid (a refetch may help) */
  | { readonly kind: 'unknown-kid' }
  /** the kid exists but its key cannot verify this alg */
  | { readonly kind: 'alg-mismatch' }
  /** no key set yet (first fetch failed) */
  | { readonly kind: 'unavailable' };

const UNKNOWN_KID: KeyLookup = Object.freeze({ kind: 'unknown-kid' });
const ALG_MISMATCH: KeyLookup = Object.freeze({ kind: 'alg-mismatch' });
const UNAVAILABLE: KeyLookup = Object.freeze({ kind: 'unavailable' });

/** A static key after the synchronous checks (compile time), before the async WebCrypto import. */
type PreparedKey =
  | { readonly type: 'jwk'; readonly kid: string | undefined; readonly jwk: Record<string, unknown>; readonly algs: readonly JwsAlgorithmName[] }
  | { readonly type: 'secret'; readonly kid: string | undefined; readonly secret: Uint8Array };

export interface IssuerKeysOptions {
  /** issuer name in `identity.issuers` (logs) */
  readonly name: string;
  readonly config: IssuerConfig;
  readonly baseDir: string;
  readonly logger: Logger;
}

export class IssuerKeys implements Service {
  readonly name: string;
  private readonly cfg: IssuerConfig;
  private readonly logger: Logger;
  private readonly algorithms: readonly JwsAlgorithmName[];
  private readonly staticKeys: readonly PreparedKey[] | undefined;
  private readonly agent: Agent | undefined;
  private readonly minRefreshMs: number;
  private readonly maxRefreshMs: number;
  private readonly cooldownMs: number;
  private readonly timeoutMs: number;

  private set: KeySet | undefined;
  private jwksUri: string | undefined;
  private discoveryExpiresAt = 0;
  private inflight: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastKidFetchAt = -Infinity;
  private lastLogAt = -Infinity;
  private failing = false;
  private closed = false;
  private readonly first: Promise<void>;

  /** completed JWKS fetches (tests, metrics) */
  fetches = 0;
  /** incremented when a refresh retires a kid: verification caches compare and drop their entries */
  rotations = 0;
  /** when the current remote set goes stale (ms epoch; 0 for static keys) */
  expiresAt = 0;

  constructor(opts: IssuerKeysOptions) {
    this.name = opts.name;
    this.cfg = opts.config;
    this.logger = opts.logger;
    this.algorithms = opts.config.algorithms;
    const j = opts.config.jwks ?? {};
    this.minRefreshMs = Math.max(MIN_INTERVAL_MS, j.minRefreshMs ?? 60_000);
    this.maxRefreshMs = Math.max(this.minRefreshMs, j.maxRefreshMs ?? 3_600_000);
    this.cooldownMs = j.unknownKidCooldownMs ?? 30_000;
    this.timeoutMs = j.timeoutMs ?? 5000;

    const sources = (opts.config.keys !== undefined ? 1 : 0) + (opts.config.jwksUri !== undefined ? 1 : 0) + (opts.config.discovery === true ? 1 : 0);
    if (sources !== 1) throw new Error(`issuer ${JSON.stringify(this.name)} needs exactly one key source: keys, jwksUri or discovery: true`);

    if (opts.config.keys !== undefined) {
      this.staticKeys = opts.config.keys.map((k, i) => prepareStaticKey(k, i, this.algorithms, opts.baseDir));
      this.first = this.importStatic();
    } else {
      this.jwksUri = opts.config.jwksUri;
      this.agent = idpAgent(j.ca, opts.baseDir);
      this.first = this.refresh();
    }
    // ready() hands a failed import to whoever waits; nobody waiting (a reload abandoned before it) must
    // not become an unhandled rejection that ends the process
    this.first.catch(() => undefined);
  }

  /** Resolves once static keys are imported, or after the first remote fetch attempt (even a failed one). */
  ready(): Promise<void> { return this.first; }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.agent?.close().catch(() => {});
  }

  get remote(): boolean { return this.staticKeys === undefined; }
  get loaded(): boolean { return this.set !== undefined; }

  /** Keys for a token header (synchronous: the current set only). */
  lookup(kid: string | undefined, alg: JwsAlgorithmName): KeyLookup {
    const set = this.set;
    if (set === undefined) return UNAVAILABLE;
    if (kid !== undefined) {
      const k = set.byKid.get(kid);
      if (k !== undefined) {
        const key = k.get(alg);
        return key !== undefined ? { kind: 'keys', keys: [key] } : ALG_MISMATCH;
      }
      const fallback = collect(set.noKid, alg);
      return fallback.length > 0 ? { kind: 'keys', keys: fallback } : UNKNOWN_KID;
    }
    const any = collect(set.all, alg);
    return any.length > 0 ? { kind: 'keys', keys: any } : ALG_MISMATCH;
  }

  /**
   * A token named a kid we do not have (or there is no set yet): refetch, unless a kid-triggered fetch
   * happened within the cooldown. Concurrent callers share one fetch. Never rejects.
   */
  async refetchForUnknownKid(): Promise<void> {
    if (!this.remote || this.closed) return;
    if (this.inflight !== undefined) return this.inflight;
    const now = Date.now();
    if (now - this.lastKidFetchAt < this.cooldownMs) return;
    this.lastKidFetchAt = now;
    return this.refresh();
  }

  private async importStatic(): Promise<void> {
    const byKid = new Map<string, AlgKeys>();
    const noKid: AlgKeys[] = [];
    const all: AlgKeys[] = [];
    for (const p of this.staticKeys ?? []) {
      const keys: AlgKeys = new Map();
      if (p.type === 'secret') {
        for (const alg of this.algorithms) if (isHmac(alg)) keys.set(alg, await importHmacSecret(p.secret, alg));
      } else {
        for (const [alg, key] of await importPublicJwk(p.jwk, p.algs)) keys.set(alg, key);
      }
      if (keys.size === 0) continue;
      all.push(keys);
      if (p.kid === undefined) noKid.push(keys);
      else if (!byKid.has(p.kid)) byKid.set(p.kid, keys);
    }
    this.set = { byKid, noKid, all };
  }

  /** One refresh at a time; schedules the next one. Never rejects. */
  private refresh(): Promise<void> {
    if (this.inflight !== undefined) return this.inflight;
    const p = this.fetchOnce().finally(() => { this.inflight = undefined; });
    this.inflight = p;
    return p;
  }

  private async fetchOnce(): Promise<void> {
    clearTimeout(this.timer);
    let nextMs: number;
    try {
      const lifetime = await this.load();
      nextMs = lifetime;
      if (this.failing) {
        this.failing = false;
        this.logger.info({ event: 'jwks-recovered', issuer: this.name }, 'JWKS fetch works again');
      }
    } catch (err) {
      this.failing = true;
      const now = Date.now();
      if (now - this.lastLogAt >= LOG_EVERY_MS) {
        this.lastLogAt = now;
        this.logger.error({
          event: 'jwks-fetch-failed', issuer: this.name, error: (err as Error).message, keys_loaded: this.set !== undefined,
        }, this.set !== undefined ? 'JWKS refresh failed; keeping the last good key set' : 'JWKS fetch failed; tokens of this issuer are refused until it works');
      }
      nextMs = Math.min(this.minRefreshMs, 30_000);
    }
    if (!this.closed) {
      this.timer = setTimeout(() => { void this.refresh(); }, nextMs);
      this.timer.unref();
    }
  }

  /** Fetches (discovery if due, then) the JWKS, swaps the set in; returns its cache lifetime. */
  private async load(): Promise<number> {
    const now = Date.now();
    if (this.cfg.discovery === true && (this.jwksUri === undefined || now >= this.discoveryExpiresAt)) {
      try {
        this.jwksUri = await this.discover();
        this.discoveryExpiresAt = now + this.maxRefreshMs;
      } catch (err) {
        // a known jwks_uri keeps working while discovery is down
        if (this.jwksUri === undefined) throw err;
      }
    }
    const reply = await fetchJson(this.jwksUri!, {
      headers: { accept: 'application/jwk-set+json, application/json' }, timeoutMs: this.timeoutMs, dispatcher: this.agent,
    });
    if (reply.status !== 200) throw new IdpFetchError(`JWKS answered ${reply.status}`);
    if (!isObject(reply.json) || !Array.isArray(reply.json.keys)) throw new IdpFetchError('JWKS document has no "keys" array');
    const set = await this.importJwks(reply.json.keys);
    if (set.all.length === 0) throw new IdpFetchError('JWKS has no usable signing key for the allowed algorithms');
    this.fetches++;
    const old = this.set;
    this.set = set;
    if (old !== undefined) {
      const retired: string[] = [];
      for (const kid of old.byKid.keys()) if (!set.byKid.has(kid)) retired.push(kid);
      if (retired.length > 0) {
        this.rotations++;
        this.logger.info({ event: 'jwks-keys-retired', issuer: this.name, kids: retired.slice(0, 10) }, 'signing keys left the JWKS; tokens verified with them are no longer cached');
      }
    }
    const lifetime = cacheLifetimeMs(reply.headers, Date.now()) ?? this.minRefreshMs;
    const ms = Math.min(this.maxRefreshMs, Math.max(this.minRefreshMs, lifetime));
    this.expiresAt = Date.now() + ms;
    return ms;
  }

  private async discover(): Promise<string> {
    const url = `${this.cfg.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
    const reply = await fetchJson(url, { headers: { accept: 'application/json' }, timeoutMs: this.timeoutMs, dispatcher: this.agent });
    if (reply.status !== 200) throw new IdpFetchError(`discovery answered ${reply.status}`);
    const doc = reply.json;
    if (!isObject(doc)) throw new IdpFetchError('discovery document is not a JSON object');
    // OpenID Connect Discovery 1.0 §4.3: the issuer must be exactly the one we asked (no mix-up)
    if (doc.issuer !== this.cfg.issuer) throw new IdpFetchError('discovery document names a different issuer');
    const uri = doc.jwks_uri;
    if (typeof uri !== 'string' || !/^https?:\/\//.test(uri)) throw new IdpFetchError('discovery document has no valid jwks_uri');
    if (this.cfg.issuer.startsWith('https://') && !uri.startsWith('https://')) throw new IdpFetchError('discovery jwks_uri is not https');
    return uri;
  }

  private async importJwks(keys: readonly unknown[]): Promise<KeySet> {
    const byKid = new Map<string, AlgKeys>();
    const noKid: AlgKeys[] = [];
    const all: AlgKeys[] = [];
    let skipped = 0;
    if (keys.length > MAX_JWKS_KEYS) {
      this.logger.warn({ event: 'jwks-truncated', issuer: this.name, keys: keys.length }, `JWKS has more than ${MAX_JWKS_KEYS} keys; the rest are ignored`);
    }
    for (const jwk of keys.slice(0, MAX_JWKS_KEYS)) {
      if (!isObject(jwk)) { skipped++; continue; }
      if (jwk.use !== undefined && jwk.use !== 'sig') continue;
      if (Array.isArray(jwk.key_ops) && !jwk.key_ops.includes('verify')) continue;
      let imported: AlgKeys;
      try {
        imported = await importPublicJwk(jwk, this.algorithms);
      } catch {
        skipped++; // private members, broken key material: never used
        continue;
      }
      if (imported.size === 0) continue;
      const kid = typeof jwk.kid === 'string' ? jwk.kid : undefined;
      all.push(imported);
      if (kid === undefined) noKid.push(imported);
      else if (!byKid.has(kid)) byKid.set(kid, imported);
    }
    if (skipped > 0) this.logger.warn({ event: 'jwks-keys-skipped', issuer: this.name, skipped }, 'unusable keys in the JWKS were skipped');
    return { byKid, noKid, all };
  }
}

function collect(sets: readonly AlgKeys[], alg: JwsAlgorithmName): VerifyKey[] {
  const out: VerifyKey[] = [];
  for (const s of sets) {
    const k = s.get(alg);
    if (k !== undefined) { out.push(k); if (out.length === MAX_KEYS_WITHOUT_KID) break; }
  }
  return out;
}

/** The issuer's algorithms this key can verify; a key that fits none is a configuration error. */
function fitting(jwk: Readonly<Record<string, unknown>>, algorithms: readonly JwsAlgorithmName[]): JwsAlgorithmName[] {
  const algs = algorithmsFor(jwk, algorithms);
  if (algs.length === 0) {
    const what = `${String(jwk.kty)}${typeof jwk.crv === 'string' ? ` ${jwk.crv}` : ''}${typeof jwk.alg === 'string' ? ` (${jwk.alg})` : ''}`;
    throw new Error(`this ${what} key cannot verify any of the issuer's algorithms (${algorithms.join(', ')})`);
  }
  return algs;
}

type StaticKeyConfig = NonNullable<IssuerConfig['keys']>[number];

/** Synchronous checks and parsing of a static key (errors surface at compile time). */
function prepareStaticKey(k: StaticKeyConfig, i: number, algorithms: readonly JwsAlgorithmName[], baseDir: string): PreparedKey {
  const where = `keys[${i}]`;
  try {
    if ('secret' in k) {
      if (!algorithms.some(isHmac)) throw new Error('an HMAC secret needs an HS256/HS384/HS512 algorithm');
      return { type: 'secret', kid: k.kid, secret: decodeSecret(k.secret) };
    }
    if ('pem' in k) {
      const jwk = pemToPublicJwk(k.pem, baseDir);
      if (k.alg !== undefined && !algorithms.includes(k.alg)) throw new Error(`alg ${k.alg} is not in the issuer's algorithms`);
      const withAlg = k.alg !== undefined ? { ...jwk, alg: k.alg } : jwk;
      return { type: 'jwk', kid: k.kid, jwk: withAlg, algs: fitting(withAlg, algorithms) };
    }
    const jwk = k.jwk;
    if (jwk.kty === 'oct') throw new Error('symmetric JWKs are not accepted: configure HMAC keys as `secret`');
    if (jwk.d !== undefined || jwk.p !== undefined || jwk.q !== undefined) throw new Error('the JWK holds private key members: configure the public key only');
    if (jwk.kty !== 'RSA' && jwk.kty !== 'EC' && jwk.kty !== 'OKP') throw new Error('unsupported JWK kty');
    return { type: 'jwk', kid: typeof jwk.kid === 'string' ? jwk.kid : undefined, jwk, algs: fitting(jwk, algorithms) };
  } catch (err) {
    throw new Error(`${where}: ${(err as Error).message}`);
  }
}
