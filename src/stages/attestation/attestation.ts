// attestation stage: a short-lived app attestation token (Approov style) in a request header proves the
// request comes from a genuine, unmodified app instance. Runs before authentication (order 67).
//
//   token missing          401 attestation-required (unless `required: false`: monitor mode lets it pass)
//   invalid / expired / too long-lived / wrong key / binding mismatch
//                          401 attestation-invalid (the detail does not say which check failed: an
//                          attacker probing the verifier learns nothing; the security event has the reason)
//   verifier unavailable   503 attestation-unavailable (JWKS unreachable: fail closed)
// Every refusal is a SecurityEvent { type: 'attestation', reason } on the identity event bus.
// 401 is what Approov's own backends answer; no WWW-Authenticate challenge is sent, as attestation is
// not an HTTP authentication scheme a client could answer with credentials.
//
// Token binding (`bindingClaim`): the claim must hold SHA-256 of the request's Authorization header
// value, base64url (unpadded) or standard base64 (Approov's `pay` claim) — a token captured from one
// user's session is useless with another Authorization value. No Authorization, several, or a
// mismatch → refused.
// The attestation header never reaches the upstream.
//
// One-time use (`oneTimeUse: true`): a token that passed every check is recorded in the shared state
// store (state.claimOnce, like DPoP's jti replay cache) until its exp + leeway; the same token again is
// refused (attestation-replay), on any worker or node sharing the store. The store not answering fails
// closed (503, attestation-replay-check-unavailable). This costs one state-store round trip on every
// request (no synchronous cache-hit path); with the memory store the record is per gateway node only.
import { createHash } from 'node:crypto';
import type { Rejection, StageModule, StageOutcome } from '../../pipeline/types.js';
import type { RequestContext } from '../../pipeline/context.js';
import { singleHeaderValue } from '../../pipeline/header-list.js';
import { serviceKey } from '../../services/services.js';
import { AttestationSchema, DEFAULT_ATTESTATION_HEADER, type AttestationConfig } from './schema.js';
import { AttestationVerifier, DEFAULT_LEEWAY_SEC, MALFORMED, type AttestationVerdict } from './verifier.js';
import { VerificationCache } from '../../identity/verification-cache.js';
import { attestationIssues } from './semantic.js';


const REQUIRED: Rejection = Object.freeze({ status: 401, code: 'attestation-required', detail: 'a valid app attestation token is required' });
const INVALID: Rejection = Object.freeze({ status: 401, code: 'attestation-invalid', detail: 'the app attestation token is not valid' });
const UNAVAILABLE: Rejection = Object.freeze({ status: 503, code: 'attestation-unavailable', detail: 'the app attestation token cannot be checked right now' });

/** several copies of the header: ambiguous, refused */
const SEVERAL = Symbol('several');

/** Removes every `name` header (lower case) from the upstream header pairs; returns its value. */
function takeHeader(fwd: string[], name: string): string | typeof SEVERAL | undefined {
  let value: string | typeof SEVERAL | undefined;
  for (let i = 0; i < fwd.length;) {
    const n = fwd[i]!;
    if (n.length === name.length && n.toLowerCase() === name) {
      value = value === undefined ? fwd[i + 1]! : SEVERAL;
      fwd.splice(i, 2);
    } else i += 2;
  }
  return value;
}

/** The single Authorization header value as the client sent it, or undefined (none or several). */
function authorizationValue(ctx: RequestContext): string | undefined {
  return singleHeaderValue(ctx.req.rawHeaders, 'authorization');
}

export function bindingMatches(claim: unknown, authorization: string | undefined): boolean {
  if (typeof claim !== 'string' || authorization === undefined) return false;
  const digest = createHash('sha256').update(authorization).digest();
  return claim === digest.toString('base64url') || claim === digest.toString('base64');
}

export const attestationStage: StageModule<'attestation', typeof AttestationSchema> = {
  name: 'attestation',
  order: 67,
  configKey: 'attestation',
  schema: AttestationSchema,
  upgrades: 'run',
  docs: 'docs/attestation-and-dpop.md',
  check: attestationIssues,
  compile(cfg, env) {
    const identity = env.identity;
    const vcfg = identity.config.attestation?.[cfg.verifier];
    if (vcfg === undefined) throw new Error(`attestation.verifier: no verifier ${JSON.stringify(cfg.verifier)} under identity.attestation`);
    const cacheEntries = identity.config.verificationCache?.maxEntries;
    const verifier = identity.services.use(
      serviceKey('attestation-verifier', cfg.verifier, vcfg, identity.baseDir, cacheEntries),
      () => new AttestationVerifier({ name: cfg.verifier, config: vcfg, baseDir: identity.baseDir, logger: identity.logger, ...(cacheEntries !== undefined ? { cacheEntries } : {}) }),
    );
    const header = (cfg.header ?? DEFAULT_ATTESTATION_HEADER).toLowerCase();
    const required = cfg.required ?? true;
    const bindingClaim = cfg.bindingClaim;
    const { routeId } = env;
    const events = identity.events;
    const oneTimeUse = cfg.oneTimeUse === true;
    const leewayMs = (vcfg.leewaySec ?? DEFAULT_LEEWAY_SEC) * 1000;
    const state = identity.state;

    const refuse = (ctx: RequestContext, reason: string, rejection: Rejection): Rejection => {
      events.emit({ type: 'attestation', reason, route: routeId, clientIp: ctx.clientIp, requestId: ctx.id, credentialId: cfg.verifier, time: Date.now() });
      return rejection;
    };

    /** Records the token as used; refuses it when it was used before (on any node sharing the store). */
    const claim = async (ctx: RequestContext, token: string, exp: number): Promise<StageOutcome> => {
      // kept as long as the verifier would accept the token (exp + leeway), and at least a second
      const ttlMs = Math.max(1000, exp * 1000 + leewayMs - Date.now());
      let first: boolean;
      try {
        first = await state.claimOnce(`attestation:${cfg.verifier}:${VerificationCache.keyOf(token)}`, ttlMs);
      } catch {
        return refuse(ctx, 'attestation-replay-check-unavailable', UNAVAILABLE); // fail closed
      }
      return first ? undefined : refuse(ctx, 'attestation-replay', INVALID);
    };

    const decide = (ctx: RequestContext, token: string, v: AttestationVerdict): StageOutcome | Promise<StageOutcome> => {
      if (!v.ok) return refuse(ctx, v.reason, v.unavailable ? UNAVAILABLE : INVALID);
      if (bindingClaim !== undefined && !bindingMatches(v.claims[bindingClaim], authorizationValue(ctx))) {
        return refuse(ctx, 'attestation-binding-mismatch', INVALID);
      }
      // last, so only otherwise valid tokens take a slot in the store
      if (oneTimeUse) return claim(ctx, token, v.claims.exp!);
      return undefined;
    };

    return {
      onRequest(ctx) {
        const token = takeHeader(ctx.plan!.fwd, header);
        if (token === undefined) return required ? refuse(ctx, 'attestation-missing', REQUIRED) : undefined;
        if (token === SEVERAL) return decide(ctx, '', MALFORMED);
        const v = verifier.check(token, Date.now());
        if (v instanceof Promise) return v.then((r) => decide(ctx, token, r));
        return decide(ctx, token, v);
      },
    };
  },
};
