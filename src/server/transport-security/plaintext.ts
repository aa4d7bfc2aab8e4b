// What a plain-HTTP listener does with a request (`listeners[].plaintext.mode`):
//   serve     handle it like any other (the default when the configuration has no TLS listener)
//   redirect  308 to https://<host>[:httpsPort]<normalized path>?<query> (the default when it has one)
//   reject    403 problem+json `https-required`
// Decided before routing, so no stage runs and no upstream is contacted. The redirect target is built
// only from what the configuration knows: the host must be one of the route `match.hosts` names or
// wildcards, or a certificate name of a TLS listener (anything else is a 400, never a redirect to an
// attacker-chosen host), and the path is the normalized one, re-encoded canonically (never raw bytes).
import type { GatewayConfig, ListenerConfig } from '../../config/schema.js';
import type { RequestContext } from '../../pipeline/context.js';
import { encodePathForUpstream } from '../../routing/normalize.js';
import type { Rejection } from '../../pipeline/types.js';
import { ANSWERED, sendBody, unreadBody } from '../respond.js';

export type PlaintextMode = 'serve' | 'redirect' | 'reject';

/** Compiled policy of a plain listener that redirects or refuses (a serving listener has none). */
export interface PlaintextPolicy {
  readonly mode: 'redirect' | 'reject';
  /** '' for 443, else ':<port>' */
  readonly portSuffix: string;
  /** exact host names (lower case, no trailing dot) */
  readonly exact: ReadonlySet<string>;
  /** '.example.com' for each `*.example.com` */
  readonly suffixes: readonly string[];
}

/** `plaintext.mode`, or the default: serve when the configuration has no TLS listener, else redirect. */
export function resolvePlaintextMode(l: ListenerConfig, cfg: Pick<GatewayConfig, 'listeners'>): PlaintextMode {
  if (l.tls !== undefined) return 'serve';
  if (l.plaintext !== undefined) return l.plaintext.mode;
  return cfg.listeners.some((x) => x.tls !== undefined) ? 'redirect' : 'serve';
}

export interface KnownHosts {
  readonly exact: Set<string>;
  readonly suffixes: string[];
}

/**
 * Host names the configuration knows: every route's `match.hosts` (port dropped) and the certificate
 * names of TLS listeners (`serverNames`, else what `certificateNames` reads from the certificate).
 */
export function knownHostNames(cfg: Pick<GatewayConfig, 'listeners' | 'routes'>, certificateNames?: (certFile: string) => readonly string[]): KnownHosts {
  const exact = new Set<string>();
  const suffixes: string[] = [];
  const add = (raw: string): void => {
    let s = raw.toLowerCase();
    const colon = s.indexOf(':');
    if (colon !== -1) s = s.slice(0, colon);
    if (s.endsWith('.')) s = s.slice(0, -1);
    if (s.startsWith('*.')) {
      const suffix = s.slice(1);
      if (isDnsName(suffix.slice(1)) && !suffixes.includes(suffix)) suffixes.push(suffix);
    } else if (isDnsName(s)) {
      exact.add(s);
    }
  };
  for (const r of cfg.routes) for (const h of r.match.hosts ?? []) add(h);
  for (const l of cfg.listeners) {
    for (const c of l.tls?.certificates ?? []) {
      if (c.serverNames !== undefined) for (const n of c.serverNames) add(n);
      else if (certificateNames !== undefined) for (const n of certificateNames(c.cert)) add(n);
    }
  }
  // Longest suffix first: the more specific pattern decides (it makes no difference to the answer).
  suffixes.sort((a, b) => b.length - a.length);
  return { exact, suffixes };
}

/** Compiles the policy of one listener, or undefined when it serves (TLS listeners always serve). */
export function compilePlaintextPolicy(l: ListenerConfig, cfg: Pick<GatewayConfig, 'listeners' | 'routes'>, known: KnownHosts): PlaintextPolicy | undefined {
  const mode = resolvePlaintextMode(l, cfg);
  if (mode === 'serve') return undefined;
  const port = l.plaintext?.httpsPort ?? 443;
  return { mode, portSuffix: port === 443 ? '' : `:${port}`, exact: known.exact, suffixes: known.suffixes };
}

// LDH host names (RFC 1123 labels), also dotted IPv4. Nothing a URL parser could read as userinfo, port,
// path or an escape; applied to the lower-cased name.
const DNS_NAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

function isDnsName(s: string): boolean {
  return DNS_NAME.test(s);
}

/**
 * The host name to redirect to, taken from a Host header that already passed the handler's syntax check,
 * or undefined when the configuration does not know it (IP literals in brackets never match).
 */
export function redirectHost(p: Pick<PlaintextPolicy, 'exact' | 'suffixes'>, host: string): string | undefined {
  if (host.charCodeAt(0) === 91 /* [ */) return undefined;
  const colon = host.indexOf(':');
  let name = (colon === -1 ? host : host.slice(0, colon)).toLowerCase();
  if (name.endsWith('.')) name = name.slice(0, -1);
  if (!DNS_NAME.test(name)) return undefined;
  if (p.exact.has(name)) return name;
  for (const s of p.suffixes) if (name.length > s.length && name.endsWith(s)) return name;
  return undefined;
}

/** The redirect target: known host, configured port, canonical re-encoding of the normalized path, the query. */
export function redirectLocation(p: PlaintextPolicy, name: string, path: string, query: string): string {
  const target = encodePathForUpstream(path);
  return query === '' ? `https://${name}${p.portSuffix}${target}` : `https://${name}${p.portSuffix}${target}?${query}`;
}

/**
 * Answers a request that arrived on a redirecting or refusing plain listener (the `plaintext` phase).
 * `ctx.path` / `ctx.query` are the normalized target; `host` passed the Host checks. Returns the refusal,
 * or ANSWERED after writing the redirect (a request with a body gets `connection: close`: it is never read).
 */
export function answerPlaintext(p: PlaintextPolicy, ctx: RequestContext, host: string): Rejection | typeof ANSWERED {
  if (p.mode === 'reject') return HTTPS_REQUIRED;
  const name = redirectHost(p, host);
  if (name === undefined) return UNKNOWN_HOST;
  ctx.blockReason = 'https-redirect';
  sendBody(ctx, 308, ['location', redirectLocation(p, name, ctx.path, ctx.query), 'cache-control', 'no-store'], '', unreadBody(ctx));
  return ANSWERED;
}

const HTTPS_REQUIRED: Rejection = Object.freeze({ status: 403, code: 'https-required', detail: 'this service is only available over HTTPS' });
const UNKNOWN_HOST: Rejection = Object.freeze({ status: 400, code: 'unknown-host', detail: 'this host is not served here' });

/** DNS names (and the CN when there are no DNS SANs) of a PEM certificate, for knownHostNames. */
export function certificateDnsNames(subjectAltName: string | undefined, subject: string): string[] {
  const out: string[] = [];
  for (const part of (subjectAltName ?? '').split(',')) {
    const t = part.trim();
    if (t.startsWith('DNS:')) out.push(t.slice(4));
  }
  if (out.length > 0) return out;
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(subject);
  return cn !== null ? [cn[1]!] : [];
}
