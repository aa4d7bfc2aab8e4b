// DPoP proof verification (RFC 9449 §4.3) for DPoP-bound access tokens (`cnf.jkt`). The JWT method calls
// verify() with the proof from the single `DPoP` header, the request's method and URI, the access token
// and the token's `cnf.jkt`. Checks, in order (each failure has its own reason):
//   proof present; compact JWS; typ dpop+jwt; alg in the allowlist (asymmetric only); `jwk` header is a
//   public key; its RFC 7638 thumbprint equals cnf.jkt; the signature verifies with it; htm = method;
//   htu = request URI (no query/fragment, scheme/host case and default ports normalized); iat within
//   [now - proofMaxAgeSec, now + leewaySec]; ath = base64url(SHA-256(access token)); jti not seen before
//   (state.claimOnce, shared by every worker and node that shares the state store).
// The replay check is last, so only proofs that are otherwise valid take a slot in the store.
//
// Scheme of the request URI: from the listener (https on TLS listeners). Behind a TLS-terminating proxy
// that talks plain HTTP to the gateway, clients sign https:// URIs the gateway sees as http:// and every
// proof fails htu: terminate TLS on the gateway for DPoP routes (X-Forwarded-Proto is not trusted).
import { createHash } from 'node:crypto';
import { calculateJwkThumbprint, decodeProtectedHeader, importJWK, jwtVerify, errors, type JWK, type JWTPayload } from 'jose';
import type { IdentityConfig, JwsAlgorithmName } from '../schema.js';
import type { StateStore } from '../../state/types.js';
import type { RequestContext } from '../../pipeline/context.js';
import { hasPrivateMembers } from '../jwt/jwk.js';
import { singleHeaderValue } from '../../pipeline/header-list.js';

export interface DpopInput { proof: string | undefined; method: string; htu: string; accessToken: string; jkt: string }
export type DpopResult = { ok: true } | { ok: false; reason: string; description: string };
export interface DpopVerifier { verify(input: DpopInput, nowMs: number): Promise<DpopResult> }

export const DEFAULT_DPOP_ALGORITHMS: readonly JwsAlgorithmName[] = ['ES256', 'RS256', 'PS256', 'EdDSA'];
const DEFAULT_PROOF_MAX_AGE_SEC = 60;
const DEFAULT_LEEWAY_SEC = 5;
/** a proof is a few hundred bytes (an RSA-4096 jwk about 1 KB): anything much larger is not one */
const MAX_PROOF_BYTES = 8192;
const MAX_JTI_LENGTH = 256;
/** JWK members that only a private (or symmetric) key has */

function fail(reason: string, description: string): DpopResult {
  return Object.freeze({ ok: false, reason, description });
}
const OK: DpopResult = Object.freeze({ ok: true });
const MISSING = fail('dpop-proof-missing', 'a DPoP proof is required for this token');
const MALFORMED = fail('dpop-proof-malformed', 'the DPoP proof is malformed');
const ALG = fail('dpop-alg-not-allowed', 'the DPoP proof algorithm is not allowed');
const SIGNATURE = fail('dpop-bad-signature', 'the DPoP proof signature is invalid');
const KEY = fail('dpop-key-mismatch', 'the DPoP proof key is not the key the token is bound to');
const HTM = fail('dpop-htm-mismatch', 'the DPoP proof is for another HTTP method');
const HTU = fail('dpop-htu-mismatch', 'the DPoP proof is for another URI');
const IAT = fail('dpop-iat-out-of-window', 'the DPoP proof is too old or from the future');
const ATH = fail('dpop-ath-mismatch', 'the DPoP proof is for another access token');
const REPLAY = fail('dpop-replay', 'the DPoP proof was already used');
const UNAVAILABLE = fail('dpop-replay-check-unavailable', 'the DPoP proof cannot be checked right now');

/** Throws when the configured algorithm list names a symmetric algorithm (semantic checks say so too). */
export function dpopAlgorithms(cfg: IdentityConfig['dpop']): readonly JwsAlgorithmName[] {
  const algs = cfg?.algorithms ?? DEFAULT_DPOP_ALGORITHMS;
  const bad = algs.filter((a) => a.startsWith('HS'));
  if (bad.length > 0) throw new Error(`identity.dpop.algorithms: ${bad.join(', ')} cannot sign DPoP proofs (asymmetric algorithms only)`);
  return algs;
}

export function createDpopVerifier(cfg: IdentityConfig['dpop'], state: StateStore): DpopVerifier {
  const allowed: ReadonlySet<string> = new Set(dpopAlgorithms(cfg));
  const maxAgeSec = cfg?.proofMaxAgeSec ?? DEFAULT_PROOF_MAX_AGE_SEC;
  const leewaySec = cfg?.leewaySec ?? DEFAULT_LEEWAY_SEC;
  // A proof is acceptable for at most maxAge + leeway after it is first seen: remember its jti that long.
  const replayWindowMs = (maxAgeSec + leewaySec) * 1000;

  return {
    async verify(input, nowMs) {
      const { proof } = input;
      if (proof === undefined) return MISSING;
      if (proof.length === 0 || proof.length > MAX_PROOF_BYTES) return MALFORMED;

      let header;
      try { header = decodeProtectedHeader(proof); } catch { return MALFORMED; }
      if (typeof header.typ !== 'string' || header.typ.toLowerCase() !== 'dpop+jwt') return MALFORMED;
      const alg = header.alg;
      if (typeof alg !== 'string' || !allowed.has(alg)) return ALG;
      const jwk = header.jwk;
      if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk) || typeof jwk.kty !== 'string') return MALFORMED;
      if (hasPrivateMembers(jwk as Record<string, unknown>)) return MALFORMED;

      let thumbprint: string;
      try { thumbprint = await calculateJwkThumbprint(jwk as JWK, 'sha256'); } catch { return MALFORMED; }
      if (thumbprint !== input.jkt) return KEY;

      let payload: JWTPayload;
      try {
        const key = await importJWK(jwk as JWK, alg);
        ({ payload } = await jwtVerify(proof, key, { algorithms: [alg], typ: 'dpop+jwt', clockTolerance: leewaySec, currentDate: new Date(nowMs) }));
      } catch (err) {
        return err instanceof errors.JWSSignatureVerificationFailed ? SIGNATURE : MALFORMED;
      }

      const { jti, htm, htu, iat, ath } = payload as JWTPayload & { htm?: unknown; htu?: unknown; ath?: unknown };
      if (typeof jti !== 'string' || jti.length === 0 || jti.length > MAX_JTI_LENGTH) return MALFORMED;
      if (typeof htm !== 'string' || typeof htu !== 'string' || typeof iat !== 'number') return MALFORMED;
      if (htm !== input.method) return HTM;
      const want = normalizeHtu(input.htu);
      if (want === undefined || normalizeHtu(htu) !== want) return HTU;
      const nowSec = nowMs / 1000;
      if (iat < nowSec - maxAgeSec || iat > nowSec + leewaySec) return IAT;
      if (typeof ath !== 'string' || ath !== sha256(input.accessToken)) return ATH;

      let first: boolean;
      try {
        first = await state.claimOnce(`dpop:${input.jkt}:${sha256(jti)}`, replayWindowMs);
      } catch {
        return UNAVAILABLE; // fail closed: without the replay check a stolen proof could be reused
      }
      return first ? OK : REPLAY;
    },
  };
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('base64url');
}

const UNRESERVED = /[A-Za-z0-9\-._~]/;

/**
 * RFC 9449 §4.3 (9): compare without query and fragment, after RFC 3986 syntax-based normalization (case
 * of scheme, host and percent-encodings; percent-encoded unreserved characters decoded; dot segments) and
 * scheme-based normalization (default port dropped, empty path = "/"). undefined: not an http(s) URI.
 */
export function normalizeHtu(s: string): string | undefined {
  let u: URL;
  try { u = new URL(s); } catch { return undefined; }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return undefined;
  const path = u.pathname.replace(/%[0-9A-Fa-f]{2}/g, (pct) => {
    const c = String.fromCharCode(parseInt(pct.slice(1), 16));
    return UNRESERVED.test(c) ? c : pct.toUpperCase();
  });
  return `${u.protocol}//${u.host}${path}`;
}

/**
 * The request's URI as the client addressed it: scheme from the listener, authority from the validated
 * Host (or :authority), path from the raw request target — not the normalized routing path, because the
 * client signed what it sent. Query and fragment are left out.
 */
export function requestHtu(ctx: RequestContext): string {
  let target = ctx.req.url ?? '/';
  if (target.charCodeAt(0) !== 47 /* / */) {
    // absolute-form (the handler checked its authority equals Host): keep the path part only
    const start = target.indexOf('//');
    const slash = start === -1 ? -1 : target.indexOf('/', start + 2);
    target = slash === -1 ? '/' : target.slice(slash);
  }
  const q = target.indexOf('?');
  if (q !== -1) target = target.slice(0, q);
  const h = target.indexOf('#');
  if (h !== -1) target = target.slice(0, h);
  return `${ctx.secure ? 'https' : 'http'}://${ctx.plan?.host ?? ''}${target}`;
}

/** The `DPoP` header value when the request has exactly one; undefined when it has none or several. */
export function dpopProofHeader(ctx: RequestContext): string | undefined {
  return singleHeaderValue(ctx.req.rawHeaders, 'dpop');
}
