// One `identity.attestation` verifier, as a long-lived Service shared by every route that names it and by
// configuration generations while its configuration is unchanged.
//
// Key sources (exactly one): `secret` (base64, Approov style, HS*), `keys` or `jwksUri` — all handled by
// the JWT issuers' key set (src/identity/jwt/key-set.ts: kid/alg → key table, JWKS cache with refresh
// and unknown-kid cooldown, no key ever taken from the token).
// Checks: alg in `algorithms`; signature; `exp` present and not past (leewaySec); `nbf` and `iat` not
// ahead (leewaySec); `iss`/`aud` when
// configured; and exp at most maxLifetimeSec (+ leeway) ahead — a long-lived "attestation" is refused,
// since the point of attestation is that a token proves a fresh check of the app.
// Verified tokens are remembered in a VerificationCache (SHA-256 of the token → verdict, never past exp):
// a repeated token costs a hash and a Map look-up and is answered synchronously.
import { decodeProtectedHeader, errors as joseErrors, type JWTPayload, type JWTVerifyOptions } from 'jose';
import type { AttestationVerifierConfig, IssuerConfig, JwsAlgorithmName } from '../../identity/schema.js';
import type { Service } from '../../services/services.js';
import type { Logger } from '../../observability/logger.js';
import { VerificationCache } from '../../identity/verification-cache.js';
import { IssuerKeys, type KeyLookup } from '../../identity/jwt/key-set.js';
import { issuedInFuture, verifyWithCandidates } from '../../identity/jwt/verify.js';

export const DEFAULT_MAX_LIFETIME_SEC = 300;
export const DEFAULT_LEEWAY_SEC = 5;
const DEFAULT_CACHE_ENTRIES = 10_000;
/** Approov tokens are a few hundred bytes */
const MAX_TOKEN_BYTES = 8192;
const JWS_COMPACT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;

export type AttestationVerdict =
  | { readonly ok: true; readonly claims: Readonly<JWTPayload> }
  | { readonly ok: false; readonly reason: string; /** the verifier could not decide (JWKS unreachable): 503 */ readonly unavailable: boolean };

const failure = (reason: string, unavailable = false): AttestationVerdict => Object.freeze({ ok: false, reason, unavailable });
export const MALFORMED = failure('attestation-malformed');
const ALG = failure('attestation-alg-not-allowed');
const UNKNOWN_KEY = failure('attestation-unknown-key');
const SIGNATURE = failure('attestation-bad-signature');
const EXPIRED = failure('attestation-expired');
const NOT_YET = failure('attestation-not-yet-valid');
const NO_EXPIRY = failure('attestation-no-expiry');
const CLAIMS = failure('attestation-claims-invalid');
const LIFETIME = failure('attestation-lifetime-too-long');
const UNAVAILABLE = failure('attestation-unavailable', true);

/**
 * The configured secret (standard or URL-safe base64) re-encoded as base64url for the key set, which
 * also enforces the 32-byte minimum.
 */
export function secretAsBase64url(secret: string): string {
  const s = secret.trim();
  if (!BASE64.test(s)) throw new Error('secret must be base64-encoded');
  return Buffer.from(s, 'base64').toString('base64url');
}

/** The verifier's keys in the issuer key-set's terms (its iss/aud checks are done here, not there). */
function keySetConfig(cfg: AttestationVerifierConfig): IssuerConfig {
  const sources = (cfg.secret !== undefined ? 1 : 0) + (cfg.keys !== undefined ? 1 : 0) + (cfg.jwksUri !== undefined ? 1 : 0);
  if (sources !== 1) throw new Error('needs exactly one key source: secret, keys or jwksUri');
  if (cfg.secret !== undefined && cfg.algorithms.some((a) => !a.startsWith('HS'))) throw new Error('a secret verifies HS256/HS384/HS512 tokens only: remove the other algorithms');
  return {
    issuer: cfg.issuer ?? '',
    audiences: cfg.audiences ?? [''],
    algorithms: cfg.algorithms,
    ...(cfg.secret !== undefined ? { keys: [{ secret: secretAsBase64url(cfg.secret) }] } : {}),
    ...(cfg.keys !== undefined ? { keys: cfg.keys } : {}),
    ...(cfg.jwksUri !== undefined ? { jwksUri: cfg.jwksUri } : {}),
  };
}

export interface AttestationVerifierOptions {
  readonly name: string;
  readonly config: AttestationVerifierConfig;
  readonly baseDir: string;
  readonly logger: Logger;
  /** identity.verificationCache.maxEntries */
  readonly cacheEntries?: number;
}

export class AttestationVerifier implements Service {
  readonly name: string;
  private readonly keys: IssuerKeys;
  private readonly cache: VerificationCache<AttestationVerdict>;
  private readonly algorithms: ReadonlySet<string>;
  private readonly joseOptions: JWTVerifyOptions;
  private readonly maxAheadSec: number;
  private readonly leewaySec: number;
  private seenRotations: number;
  /** full (non-cached) verifications done (tests) */
  verifications = 0;

  constructor(opts: AttestationVerifierOptions) {
    const cfg = opts.config;
    this.name = opts.name;
    try {
      this.keys = new IssuerKeys({ name: opts.name, config: keySetConfig(cfg), baseDir: opts.baseDir, logger: opts.logger });
    } catch (err) {
      throw new Error(`identity.attestation.${opts.name}: ${(err as Error).message}`);
    }
    this.cache = new VerificationCache(opts.cacheEntries ?? DEFAULT_CACHE_ENTRIES);
    this.algorithms = new Set(cfg.algorithms);
    const leeway = cfg.leewaySec ?? DEFAULT_LEEWAY_SEC;
    this.leewaySec = leeway;
    this.maxAheadSec = (cfg.maxLifetimeSec ?? DEFAULT_MAX_LIFETIME_SEC) + leeway;
    this.joseOptions = Object.freeze({
      algorithms: [...cfg.algorithms],
      clockTolerance: leeway,
      requiredClaims: ['exp'],
      crit: {},
      ...(cfg.issuer !== undefined ? { issuer: cfg.issuer } : {}),
      ...(cfg.audiences !== undefined ? { audience: [...cfg.audiences] } : {}),
    });
    this.seenRotations = this.keys.rotations;
  }

  ready(): Promise<void> { return this.keys.ready(); }
  close(): Promise<void> { return this.keys.close(); }

  /** Synchronous on a cache hit; a promise only when the token must be verified. */
  check(token: string, nowMs: number): AttestationVerdict | Promise<AttestationVerdict> {
    if (token.length > MAX_TOKEN_BYTES || !JWS_COMPACT.test(token)) return MALFORMED;
    if (this.keys.rotations !== this.seenRotations) {
      // a refresh retired a key: what it verified must be verified again
      this.seenRotations = this.keys.rotations;
      this.cache.invalidateAll();
    }
    const hash = VerificationCache.keyOf(token);
    return this.cache.get(hash, nowMs) ?? this.verify(token, hash, nowMs);
  }

  private async verify(token: string, hash: string, nowMs: number): Promise<AttestationVerdict> {
    let header;
    try { header = decodeProtectedHeader(token); } catch { return MALFORMED; }
    const alg = header.alg;
    if (typeof alg !== 'string' || !this.algorithms.has(alg)) return ALG;
    const kid = header.kid;
    if (kid !== undefined && (typeof kid !== 'string' || kid.length === 0 || kid.length > 256)) return MALFORMED;

    let found: KeyLookup = this.keys.lookup(kid, alg as JwsAlgorithmName);
    if (found.kind === 'unknown-kid' || found.kind === 'unavailable') {
      await this.keys.refetchForUnknownKid();
      found = this.keys.lookup(kid, alg as JwsAlgorithmName);
    }
    if (found.kind === 'unavailable') return UNAVAILABLE;
    if (found.kind !== 'keys') return UNKNOWN_KEY;

    const options: JWTVerifyOptions = { ...this.joseOptions, currentDate: new Date(nowMs) };
    const { payload, error, attempts } = await verifyWithCandidates(token, found.keys, options);
    this.verifications += attempts;
    if (payload === undefined) return mapError(error);
    if (issuedInFuture(payload, nowMs, this.leewaySec)) return NOT_YET;
    const exp = payload.exp!; // requiredClaims: jose refused a token without a numeric exp
    if (exp - nowMs / 1000 > this.maxAheadSec) return LIFETIME;
    const verdict: AttestationVerdict = Object.freeze({ ok: true, claims: Object.freeze(payload) });
    this.cache.set(hash, verdict, exp * 1000);
    return verdict;
  }
}

function mapError(err: unknown): AttestationVerdict {
  if (err instanceof joseErrors.JWTExpired) return EXPIRED;
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return SIGNATURE;
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return ALG;
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === 'exp') return NO_EXPIRY;
    if (err.claim === 'nbf') return NOT_YET;
    return CLAIMS;
  }
  return MALFORMED;
}
