// JWT access-token verification for a route: pick the issuer by `iss` among the route's issuers, find
// the key in that issuer's own key set, let jose check signature and claims, build the identity, and
// remember the verdict.
//
// Hot path: a token verified before is answered from a bounded LRU keyed by its SHA-256, synchronously;
// the only allocation is the hash (the cached, frozen outcome object is returned as is). Entries never outlive the token's
// exp (nor iat + maxAgeSec), live at most CACHE_CAP_MS, and are all dropped when a key-set refresh retires
// a kid. Caches live per configuration generation (identities carry consumer data that a reload may
// change); the key sets themselves are long-lived services shared across reloads.
import { decodeJwt, decodeProtectedHeader, jwtVerify, errors as joseErrors, type JWTPayload, type JWTVerifyOptions, type ProtectedHeaderParameters } from 'jose';
import type { IdentityEnv } from '../env.js';
import type { IssuerConfig, JwsAlgorithmName } from '../schema.js';
import type { Identity } from '../identity.js';
import type { AuthFailure, AuthFailureError } from '../failure.js';
import { GenerationLocal, serviceKey } from '../../services/services.js';
import { VerificationCache } from '../verification-cache.js';
import type { ConsumerDirectory } from '../consumer.js';
import { IssuerKeys, type KeyLookup } from './key-set.js';
import { claimAt, mergeRoles, scopesOf, stringList } from '../claims.js';

/** A verified token: an AuthOutcome success, plus the DPoP key binding (cnf.jkt) when the token has one. */
export interface VerifiedJwt {
  readonly ok: true;
  readonly identity: Identity;
  readonly jkt: string | undefined;
}

export type JwtResult = VerifiedJwt | AuthFailure;


/** Verified tokens are re-verified at least this often (bounds the effect of consumer or key changes). */
export const CACHE_CAP_MS = 5 * 60_000;
const DEFAULT_CACHE_ENTRIES = 10_000;
const DEFAULT_MAX_TOKEN_BYTES = 8192;
const JWS_COMPACT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/**
 * True if the token says it was issued later than now + leeway. jose only compares `iat` with the clock
 * when maxTokenAge is set; a token "from the future" is a forged or mis-minted one (or a clock far off)
 * and is refused whatever maxAgeSec says (RFC 8725 spirit). Shared with the attestation verifier.
 */
export function issuedInFuture(payload: JWTPayload, nowMs: number, leewaySec: number): boolean {
  return typeof payload.iat === 'number' && payload.iat > nowMs / 1000 + leewaySec;
}

export function jwtFailure(reason: string, description: string, credentialId?: string, status: 401 | 503 = 401, error: AuthFailureError = 'invalid_token'): AuthFailure {
  return Object.freeze({ ok: false, status, reason, error, description, ...(credentialId !== undefined ? { credentialId } : {}) });
}

const TOO_LARGE = jwtFailure('jwt-too-large', 'the token is too large');
const MALFORMED = jwtFailure('jwt-malformed', 'the token is not a well-formed JWT');
const UNKNOWN_ISSUER = jwtFailure('jwt-unknown-issuer', 'the token issuer is not accepted here');

export interface VerifierOptions {
  /** clock for tests (ms epoch); jose is given the same time */
  readonly now?: () => number;
}

/** The refusals of one issuer, built once (credentialId = the issuer name). */
function issuerFailures(name: string) {
  const f = (reason: string, description: string, status: 401 | 503 = 401): AuthFailure => jwtFailure(reason, description, name, status);
  return {
    expired: f('jwt-expired', 'the token has expired'),
    notYetValid: f('jwt-not-yet-valid', 'the token is not valid yet'),
    badSignature: f('jwt-bad-signature', 'the token signature is invalid'),
    algNotAllowed: f('jwt-alg-not-allowed', 'the token signing algorithm is not accepted'),
    claimInvalid: f('jwt-claim-invalid', 'the token claims are not accepted'),
    malformed: f('jwt-malformed', 'the token is not a well-formed JWT'),
    tooLarge: f('jwt-too-large', 'the token is too large'),
    crit: f('jwt-crit-unsupported', 'the token uses an unsupported critical header parameter'),
    unknownKid: f('jwt-unknown-kid', 'the token signing key is unknown'),
    keyMismatch: f('jwt-alg-not-allowed', 'the signing key does not support the token algorithm'),
    unavailable: f('jwt-keys-unavailable', 'the token issuer cannot be reached; try again later', 503),
    noSubject: f('jwt-claim-invalid', 'the token has no subject'),
  } as const;
}
type IssuerFailures = ReturnType<typeof issuerFailures>;

/** Verification for one issuer (per configuration generation). */
export class IssuerVerifier {
  readonly name: string;
  /** the expected `iss` */
  readonly issuer: string;
  readonly maxTokenBytes: number;
  readonly cache: VerificationCache<VerifiedJwt>;
  /** jose verifications run (tests: a cache hit must not add one) */
  verifications = 0;

  private readonly algorithms: ReadonlySet<string>;
  private readonly joseOptions: JWTVerifyOptions;
  private readonly maxAgeMs: number | undefined;
  private readonly leewaySec: number;
  private readonly failures: IssuerFailures;
  private seenRotations: number;

  constructor(
    name: string,
    private readonly cfg: IssuerConfig,
    readonly keys: IssuerKeys,
    private readonly consumers: ConsumerDirectory,
    cacheEntries: number,
    private readonly now: () => number,
    private readonly customClock: boolean,
  ) {
    this.name = name;
    this.issuer = cfg.issuer;
    this.maxTokenBytes = cfg.maxTokenBytes ?? DEFAULT_MAX_TOKEN_BYTES;
    this.cache = new VerificationCache(cacheEntries);
    this.algorithms = new Set(cfg.algorithms);
    this.maxAgeMs = cfg.maxAgeSec !== undefined ? cfg.maxAgeSec * 1000 : undefined;
    this.seenRotations = keys.rotations;
    this.leewaySec = cfg.leewaySec ?? 30;
    this.joseOptions = Object.freeze({
      algorithms: [...cfg.algorithms],
      issuer: cfg.issuer,
      audience: [...cfg.audiences],
      clockTolerance: this.leewaySec,
      requiredClaims: ['exp', ...(cfg.requiredClaims ?? [])],
      ...(cfg.maxAgeSec !== undefined ? { maxTokenAge: cfg.maxAgeSec } : {}),
      // no extension is understood: a token marking any header parameter critical is refused (RFC 7515 4.1.11)
      crit: {},
    });
    this.failures = issuerFailures(name);
  }

  /** The cached verdict for this token hash, if any (drops everything first when keys were retired). */
  cached(hash: string, nowMs: number): VerifiedJwt | undefined {
    if (this.keys.rotations !== this.seenRotations) {
      this.seenRotations = this.keys.rotations;
      this.cache.invalidateAll();
      return undefined;
    }
    return this.cache.get(hash, nowMs);
  }

  /** Full verification (cache miss). */
  async verify(token: string, header: ProtectedHeaderParameters, hash: string): Promise<JwtResult> {
    const fl = this.failures;
    if (token.length > this.maxTokenBytes) return fl.tooLarge;
    const alg = header.alg;
    if (typeof alg !== 'string' || !this.algorithms.has(alg)) return fl.algNotAllowed;
    const kid = header.kid;
    if (kid !== undefined && (typeof kid !== 'string' || kid.length === 0 || kid.length > 256)) return fl.malformed;

    let found: KeyLookup = this.keys.lookup(kid, alg as JwsAlgorithmName);
    if (found.kind === 'unknown-kid' || found.kind === 'unavailable') {
      await this.keys.refetchForUnknownKid();
      found = this.keys.lookup(kid, alg as JwsAlgorithmName);
    }
    if (found.kind === 'unknown-kid') return fl.unknownKid;
    if (found.kind === 'unavailable') return fl.unavailable;
    if (found.kind === 'alg-mismatch') return fl.keyMismatch;

    const nowMs = this.now();
    const options = this.customClock ? { ...this.joseOptions, currentDate: new Date(nowMs) } : this.joseOptions;
    const { payload, error, attempts } = await verifyWithCandidates(token, found.keys, options);
    this.verifications += attempts;
    if (payload === undefined) return this.mapError(error);
    if (issuedInFuture(payload, nowMs, this.leewaySec)) return this.failures.notYetValid;
    return this.accept(payload, hash, nowMs);
  }

  private accept(payload: JWTPayload, hash: string, nowMs: number): JwtResult {
    const cfg = this.cfg;
    const subject = claimAt(payload, cfg.subjectClaim ?? 'sub');
    if (typeof subject !== 'string' || subject === '') return this.failures.noSubject;
    let consumer: string | undefined;
    let roles = stringList(cfg.rolesClaim !== undefined ? claimAt(payload, cfg.rolesClaim) : undefined);
    let metadata: Identity['metadata'];
    if (cfg.consumerClaim !== undefined) {
      const id = claimAt(payload, cfg.consumerClaim);
      const c = typeof id === 'string' ? this.consumers.get(id) : undefined;
      if (c !== undefined) {
        consumer = c.id;
        roles = mergeRoles(roles, c.roles);
        metadata = c.metadata;
      }
    }
    const cnf = payload.cnf as { jkt?: unknown } | undefined;
    const jkt = typeof cnf === 'object' && cnf !== null && typeof cnf.jkt === 'string' ? cnf.jkt : undefined;
    const identity: Identity = Object.freeze({
      id: consumer ?? subject,
      kind: 'jwt',
      subject,
      issuer: this.issuer,
      ...(consumer !== undefined ? { consumer } : {}),
      roles: Object.freeze(roles),
      scopes: Object.freeze(scopesOf(payload)),
      claims: Object.freeze(payload),
      ...(metadata !== undefined ? { metadata } : {}),
    });
    const verified: VerifiedJwt = Object.freeze({ ok: true, identity, jkt });
    let until = Math.min((payload.exp ?? 0) * 1000, nowMs + CACHE_CAP_MS);
    if (this.maxAgeMs !== undefined && typeof payload.iat === 'number') until = Math.min(until, payload.iat * 1000 + this.maxAgeMs);
    if (until > nowMs) this.cache.set(hash, verified, until);
    return verified;
  }

  private mapError(err: unknown): AuthFailure {
    const fl = this.failures;
    if (err instanceof joseErrors.JWTExpired) return fl.expired;
    if (err instanceof joseErrors.JWTClaimValidationFailed) {
      // 'iat' + check_failed: jose's own "should be in the past" check (when maxAgeSec is set)
      return err.claim === 'nbf' || (err.claim === 'iat' && err.reason === 'check_failed') ? fl.notYetValid : fl.claimInvalid;
    }
    if (err instanceof joseErrors.JWSSignatureVerificationFailed) return fl.badSignature;
    if (err instanceof joseErrors.JOSEAlgNotAllowed) return fl.algNotAllowed;
    if (err instanceof joseErrors.JOSENotSupported) return fl.crit;
    if (err instanceof joseErrors.JWSInvalid || err instanceof joseErrors.JWTInvalid) return fl.malformed;
    // TypeError from jose: a key that does not fit the algorithm (the key table prevents this) or bad input
    return fl.badSignature;
  }
}

/** Issuer verifiers of one configuration generation (on its ServiceScope), shared by the routes that name the same issuer. */
const ISSUER_VERIFIERS = new GenerationLocal<Map<string, IssuerVerifier>>('jwt issuer verifiers');

/** The verifier of issuer `name` for this generation (its key set comes from the service pool). */
export function issuerVerifier(name: string, env: IdentityEnv, opts: VerifierOptions = {}): IssuerVerifier {
  const cfg = env.config.issuers?.[name];
  if (cfg === undefined) throw new Error(`unknown issuer ${JSON.stringify(name)} (define it under identity.issuers)`);
  const byName = env.services.local(ISSUER_VERIFIERS, () => new Map<string, IssuerVerifier>());
  // a custom clock (tests) gets its own verifier so no other route shares its notion of time
  const have = opts.now === undefined ? byName.get(name) : undefined;
  if (have !== undefined) return have;
  const keys = env.services.use(serviceKey('issuer', name, cfg, env.baseDir), () => new IssuerKeys({ name, config: cfg, baseDir: env.baseDir, logger: env.logger }));
  const v = new IssuerVerifier(name, cfg, keys, env.consumers, env.config.verificationCache?.maxEntries ?? DEFAULT_CACHE_ENTRIES, opts.now ?? Date.now, opts.now !== undefined);
  if (opts.now === undefined) byName.set(name, v);
  return v;
}

/** Verification against the issuers of one route. */
export class JwtVerifier {
  private readonly byIssuer = new Map<string, IssuerVerifier>();
  private readonly all: readonly IssuerVerifier[];
  private readonly maxBytes: number;
  private readonly now: () => number;

  constructor(issuers: readonly IssuerVerifier[], now: () => number = Date.now) {
    for (const v of issuers) {
      if (this.byIssuer.has(v.issuer)) throw new Error(`issuers ${JSON.stringify(this.byIssuer.get(v.issuer)!.name)} and ${JSON.stringify(v.name)} have the same issuer value; a token could not be attributed`);
      this.byIssuer.set(v.issuer, v);
    }
    this.all = issuers;
    this.maxBytes = Math.max(...issuers.map((v) => v.maxTokenBytes));
    this.now = now;
  }

  /** Synchronous on a cache hit or an early refusal; a promise when jose (or a key fetch) must run. */
  verify(token: string): JwtResult | Promise<JwtResult> {
    if (token.length > this.maxBytes) return TOO_LARGE;
    const hash = VerificationCache.keyOf(token);
    const nowMs = this.now();
    const all = this.all;
    for (let i = 0; i < all.length; i++) {
      const hit = all[i]!.cached(hash, nowMs);
      if (hit !== undefined) return hit;
    }
    if (!JWS_COMPACT.test(token)) return MALFORMED;
    let header: ProtectedHeaderParameters;
    let payload: JWTPayload;
    try {
      header = decodeProtectedHeader(token) as ProtectedHeaderParameters;
      payload = decodeJwt(token);
    } catch {
      return MALFORMED;
    }
    const v = typeof payload.iss === 'string' ? this.byIssuer.get(payload.iss) : undefined;
    if (v === undefined) return UNKNOWN_ISSUER;
    return v.verify(token, header, hash);
  }
}

/**
 * jose verification against candidate keys (several only for a token without `kid`): the first key
 * whose signature verifies wins; any failure other than a bad signature is final. Also used by the
 * attestation verifier.
 */
export async function verifyWithCandidates(token: string, keys: readonly Parameters<typeof jwtVerify>[1][], options: JWTVerifyOptions): Promise<{ payload: JWTPayload | undefined; error: unknown; attempts: number }> {
  let error: unknown;
  let attempts = 0;
  for (const key of keys) {
    attempts++;
    try {
      return { payload: (await jwtVerify(token, key, options)).payload, error: undefined, attempts };
    } catch (err) {
      error = err;
      if (!(err instanceof joseErrors.JWSSignatureVerificationFailed)) break;
    }
  }
  return { payload: undefined, error, attempts };
}
