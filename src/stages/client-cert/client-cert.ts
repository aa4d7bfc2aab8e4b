// client-cert stage: per-route mTLS. Runs just before attestation and authentication (order 65).
//
// The listener asks for a certificate during the handshake (`tls.clientCertificate.mode: request`) and
// records whether it verified; this stage decides per route:
//   required       no certificate, or one the handshake could not verify (other CA, expired, ...) → 403
//                  `client-certificate-required`, a security event { type: 'client-certificate', reason:
//                  'client-certificate-missing' | 'client-certificate-unverified' } and a log line with the detail
//   subjects/sans/fingerprints   allowlists; each configured list must match (AND) → else 403
//                  `client-certificate-not-allowed` (event reason 'client-certificate-not-allowed'). On a route that does not require a certificate, a
//                  certificate that fails them simply establishes no identity.
//   identity       ctx.identity = { kind: 'mtls', id: CN or fingerprint } when no earlier stage set one
//   forwardHeader  the verified identity goes upstream in this header. Client-sent copies of every
//                  configured forwardHeader name are removed on every route by the request handler
//                  (GatewayRuntime.ownedRequestHeaders, see forwardHeaderNames), not only here.
import type { RouteConfig } from '../../config/schema.js';
import { ClientCertSchema, type ClientCertConfig } from './schema.js';
import { clientCertIssues } from './semantic.js';
import type { Rejection, StageModule } from '../../pipeline/types.js';
import type { RequestContext } from '../../pipeline/context.js';
import type { SecurityEventBus } from '../../observability/security-events.js';
import { normalizeFingerprint, peerCertificate, sanAllowKeys, type PeerCertificate } from './identity.js';

export type { ClientCertConfig } from './schema.js';

const REQUIRED: Rejection = Object.freeze({ status: 403, code: 'client-certificate-required', detail: 'a valid client certificate is required' });
const NOT_ALLOWED: Rejection = Object.freeze({ status: 403, code: 'client-certificate-not-allowed', detail: 'this client certificate is not allowed here' });

export interface ClientCertPolicy {
  readonly required: boolean;
  readonly subjects: ReadonlySet<string> | undefined;
  readonly sans: ReadonlySet<string> | undefined;
  readonly fingerprints: ReadonlySet<string> | undefined;
  /** lower-case header name, or undefined */
  readonly forwardHeader: string | undefined;
}

export function compileClientCertPolicy(cfg: ClientCertConfig): ClientCertPolicy {
  const fingerprints = cfg.fingerprints?.map((f) => {
    const n = normalizeFingerprint(f);
    // semantic.ts reports this; compile must never turn a bad entry into "allow nothing" silently
    if (n === undefined) throw new Error(`invalid SHA-256 fingerprint ${JSON.stringify(f)}`);
    return n;
  });
  return {
    required: cfg.required,
    subjects: cfg.subjects !== undefined ? new Set(cfg.subjects) : undefined,
    sans: cfg.sans !== undefined ? new Set(cfg.sans.flatMap(sanAllowKeys)) : undefined,
    fingerprints: fingerprints !== undefined ? new Set(fingerprints) : undefined,
    forwardHeader: cfg.forwardHeader?.toLowerCase(),
  };
}

/** Do the policy's allowlists (all of those configured) accept this verified certificate? */
export function allowedBy(p: ClientCertPolicy, pc: PeerCertificate): boolean {
  if (p.subjects !== undefined && (pc.subject === undefined || !p.subjects.has(pc.subject))) return false;
  if (p.fingerprints !== undefined && !p.fingerprints.has(pc.fingerprint)) return false;
  if (p.sans !== undefined) {
    let hit = false;
    for (const s of pc.sans) if (p.sans.has(s)) { hit = true; break; }
    if (!hit) return false;
  }
  return true;
}

/** The security event reason for a refused certificate (a bounded set: it is a metric label). */
function eventReason(pc: PeerCertificate, rejection: Rejection): string {
  if (rejection === NOT_ALLOWED) return 'client-certificate-not-allowed';
  return pc.fingerprint === '' ? 'client-certificate-missing' : 'client-certificate-unverified';
}

function refuse(ctx: RequestContext, pc: PeerCertificate, rejection: Rejection, reason: string, events: SecurityEventBus): Rejection {
  events.emit({
    type: 'client-certificate',
    reason: eventReason(pc, rejection),
    route: ctx.routeId,
    clientIp: ctx.clientIp,
    requestId: ctx.id,
    // the certificate's SHA-256 fingerprint: public, and what an operator needs to find the client
    ...(pc.fingerprint !== '' ? { credentialId: pc.fingerprint } : {}),
    time: Date.now(),
  });
  ctx.runtime?.logger.warn({
    event: 'client-certificate-refused',
    request_id: ctx.id,
    route: ctx.routeId,
    listener: ctx.listener,
    client_ip: ctx.clientIp,
    reason,
    ...(pc.subject !== undefined ? { subject: pc.subject } : {}),
    ...(pc.fingerprint !== '' ? { fingerprint: pc.fingerprint } : {}),
  }, 'client certificate refused');
  return rejection;
}

export const clientCertStage: StageModule<'clientCert', typeof ClientCertSchema> = {
  name: 'client-cert',
  order: 65,
  configKey: 'clientCert',
  schema: ClientCertSchema,
  upgrades: 'run',
  docs: 'docs/transport-security.md',
  check: clientCertIssues,
  ownedRequestHeaders: (routes) => forwardHeaderNames(routes) ?? [],
  compile(cfg, env) {
    const p = compileClientCertPolicy(cfg);
    const events = env.identity.events;
    const { required, forwardHeader } = p;
    return {
      onRequest(ctx) {
        const pc = peerCertificate(ctx.req);
        if (!pc.verified) return required ? refuse(ctx, pc, REQUIRED, pc.reason, events) : undefined;
        if (!allowedBy(p, pc)) return required ? refuse(ctx, pc, NOT_ALLOWED, 'not in the route allowlist', events) : undefined;
        if (ctx.identity === undefined) ctx.identity = pc.identity;
        if (forwardHeader !== undefined) ctx.plan?.fwd.push(forwardHeader, pc.headerValue);
        return undefined;
      },
    };
  },
};

/**
 * Every forwardHeader name configured on any route (lower case), or undefined when there is none. The
 * request handler strips client copies of these on every route and listener, so no client can inject
 * an identity header a backend trusts.
 */
export function forwardHeaderNames(routes: readonly RouteConfig[]): ReadonlySet<string> | undefined {
  let out: Set<string> | undefined;
  for (const r of routes) {
    const h = r.clientCert?.forwardHeader;
    if (h !== undefined) (out ??= new Set()).add(h.toLowerCase());
  }
  return out;
}
