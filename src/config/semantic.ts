// Checks the JSON Schema cannot express: cross references, uniqueness, path-pattern syntax, header
// injection, bind conflicts, and settings that are valid but probably not what was meant (warnings).
// Input is a config that already passed schema validation. Messages never echo header values or
// target URLs (they may carry secrets substituted from the environment).
import ipaddr from 'ipaddr.js';
import type { GatewayConfig, UpstreamConfig } from './schema.js';
import { formatPath, suggest, type PathSegment, type SemanticIssue } from './issues.js';
import { HOP_BY_HOP_HEADERS, CTL_IN_HEADER_VALUE } from '../net/header-tables.js';
import { transportSecurityIssues } from '../server/transport-security/semantic.js';
import { dpopIssues } from '../identity/dpop/semantic.js';
import { apiKeyIssues } from '../identity/api-keys/semantic.js';
import { issuerIssues } from '../identity/jwt/semantic.js';
import { stateIssues } from '../state/semantic.js';
import { STAGES } from '../pipeline/registry.js';
import type { AnyStageModule } from '../pipeline/types.js';

export type { SemanticIssue } from './issues.js';
export { HOP_BY_HOP_HEADERS } from '../net/header-tables.js';

/** Checks of the foundations (not stages): listener transport security, identity providers, the state store. */
const FOUNDATION_CHECKS: readonly ((cfg: GatewayConfig) => SemanticIssue[])[] = [
  transportSecurityIssues, dpopIssues, apiKeyIssues, issuerIssues, stateIssues,
];

/** Aliases accepted in server.trustedProxies besides addresses and CIDR blocks. */
export const TRUSTED_PROXY_ALIASES: ReadonlySet<string> = new Set(['loopback', 'private', 'linklocal']);

const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export interface PathPatternInfo {
  params: string[];
  wildcard: boolean;
  problems: string[];
}

/** Parses a `match.path` pattern: `:name` segments capture, a final `/*` captures the rest. */
export function analyzePathPattern(pattern: string): PathPatternInfo {
  const segs = pattern.split('/').slice(1);
  const params: string[] = [];
  const problems: string[] = [];
  let wildcard = false;
  segs.forEach((seg, i) => {
    if (seg.includes('*')) {
      if (seg === '*' && i === segs.length - 1) wildcard = true;
      else problems.push('"*" is only allowed as the whole last segment ("/*")');
      return;
    }
    if (seg.startsWith(':')) {
      const name = seg.slice(1);
      if (!PARAM_NAME.test(name)) problems.push(`invalid parameter ${JSON.stringify(seg)}: names must match [A-Za-z_][A-Za-z0-9_]*`);
      else if (params.includes(name)) problems.push(`duplicate parameter ":${name}"`);
      else params.push(name);
    }
  });
  return { params, wildcard, problems: [...new Set(problems)] };
}

/** IPv4 in dotted four-part decimal only (no `127.1`, `0x7f.0.0.1`, `2130706433`), or IPv6. */
function strictIp(s: string): boolean {
  return ipaddr.IPv4.isValidFourPartDecimal(s) || ipaddr.IPv6.isValid(s);
}

type ProxyCheck = { ok: true; warning?: string } | { ok: false };

function checkTrustedProxy(entry: string): ProxyCheck {
  if (TRUSTED_PROXY_ALIASES.has(entry)) return { ok: true };
  if (!entry.includes('/')) return strictIp(entry) ? { ok: true } : { ok: false };
  const [addr = '', bits = '', ...rest] = entry.split('/');
  if (rest.length > 0 || !/^\d{1,3}$/.test(bits) || !strictIp(addr) || addr.includes('%')) return { ok: false };
  const v4 = ipaddr.IPv4.isValidFourPartDecimal(addr);
  const prefix = Number(bits);
  if (prefix > (v4 ? 32 : 128)) return { ok: false };
  if (prefix === 0) return { ok: true, warning: `${JSON.stringify(entry)} trusts every peer: any client can spoof its address with X-Forwarded-For / Forwarded` };
  const network = v4 ? ipaddr.IPv4.networkAddressFromCIDR(entry) : ipaddr.IPv6.networkAddressFromCIDR(entry);
  if (network.toString() !== ipaddr.parse(addr).toString()) {
    return { ok: true, warning: `${JSON.stringify(entry)} has host bits set; it means ${network.toString()}/${prefix}` };
  }
  return { ok: true };
}

function isLoopback(address: string): boolean {
  if (address.toLowerCase() === 'localhost') return true;
  if (!strictIp(address)) return false;
  return ipaddr.process(address).range() === 'loopback';
}

type Bind = { kind: 'v4any' } | { kind: 'any' } | { kind: 'v4'; addr: string } | { kind: 'v6'; addr: string } | { kind: 'name'; addr: string };

function bindOf(address: string): Bind {
  if (strictIp(address)) {
    const ip = ipaddr.process(address);
    const s = ip.toString();
    if (ip.kind() === 'ipv4') return s === '0.0.0.0' ? { kind: 'v4any' } : { kind: 'v4', addr: s };
    return s === '::' ? { kind: 'any' } : { kind: 'v6', addr: s };
  }
  return { kind: 'name', addr: address.toLowerCase() };
}

/** Would binding both on the same port fail (EADDRINUSE)? `::` is dual-stack in Node. */
function bindsOverlap(a: Bind, b: Bind): boolean {
  if (a.kind === 'any' || b.kind === 'any') return true;
  if (a.kind === 'v4any') return b.kind === 'v4any' || b.kind === 'v4';
  if (b.kind === 'v4any') return a.kind === 'v4';
  return a.kind === b.kind && a.addr === b.addr;
}

type Report = (path: PathSegment[], message: string) => void;

/** `upstreams.<name>.tls`: settings that would do nothing, or turn verification off. */
function checkUpstreamTls(u: UpstreamConfig, base: PathSegment[], err: Report, warn: Report): void {
  const t = u.tls;
  if (t === undefined) return;
  const p: PathSegment[] = [...base, 'tls'];
  const plain = u.targets.map((x, i) => (/^https:/i.test(x.url) ? -1 : i)).filter((i) => i >= 0);
  if (plain.length === u.targets.length) {
    err(p, 'tls settings apply only to https:// targets, and every target of this upstream is http:// (traffic would be sent in the clear)');
  } else if (plain.length > 0) {
    warn(p, `targets ${plain.map((i) => `[${i}]`).join(', ')} are http://: tls settings do not apply to them and their traffic is sent in the clear`);
  }
  if ((t.cert === undefined) !== (t.key === undefined)) err([...p, t.cert === undefined ? 'cert' : 'key'], 'a client certificate needs both "cert" and "key"');
  if (t.passphrase !== undefined && t.key === undefined) err([...p, 'passphrase'], 'passphrase is only used to decrypt "key", which is not set');
  if (t.servername !== undefined && strictIp(t.servername)) err([...p, 'servername'], 'servername is a DNS name (sent as SNI); IP targets are verified against their address without it');
  if (t.insecureSkipVerify === true) {
    if (t.pins !== undefined) {
      warn([...p, 'insecureSkipVerify'], 'certificate chain, validity dates and host name are not verified; only the pinned keys authenticate the upstream');
    } else {
      warn([...p, 'insecureSkipVerify'], 'upstream certificates are not verified: anyone on the network path can impersonate the upstream and read the traffic');
    }
    if (t.ca !== undefined) warn([...p, 'ca'], 'ignored: insecureSkipVerify turns certificate verification off');
  }
}

export function checkSemantics(cfg: GatewayConfig, stages: readonly AnyStageModule[] = STAGES): SemanticIssue[] {
  const out: SemanticIssue[] = [];
  const err = (path: PathSegment[], message: string): void => { out.push({ path: formatPath(path), message, severity: 'error' }); };
  const warn = (path: PathSegment[], message: string): void => { out.push({ path: formatPath(path), message, severity: 'warning' }); };

  // ------------------------------------------------------------ listeners
  const listenerNames = new Map<string, number>();
  const binds: { path: PathSegment[]; label: string; port: number; bind: Bind; what: string }[] = [];
  cfg.listeners.forEach((l, i) => {
    const first = listenerNames.get(l.name);
    if (first !== undefined) err(['listeners', i, 'name'], `duplicate listener name ${JSON.stringify(l.name)} (also listeners[${first}])`);
    else listenerNames.set(l.name, i);
    const address = l.address ?? '0.0.0.0';
    if (l.port !== 0) binds.push({ path: ['listeners', i], label: `listeners[${i}]`, port: l.port, bind: bindOf(address), what: `${address}:${l.port}` });
  });
  const status = cfg.server?.status;
  if (status?.enabled !== false) {
    const address = status?.address ?? '127.0.0.1';
    const port = status?.port ?? 9901;
    if (port !== 0) binds.push({ path: ['server', 'status'], label: 'server.status', port, bind: bindOf(address), what: `${address}:${port}` });
    if (status?.address !== undefined && !isLoopback(status.address)) {
      warn(['server', 'status', 'address'], `status listener exposed on non-loopback address ${JSON.stringify(status.address)}: health and metrics (unauthenticated) and the token-protected cache purge endpoint are reachable from the network`);
    }
  }
  binds.forEach((b, i) => {
    const clash = binds.slice(0, i).find((o) => o.port === b.port && bindsOverlap(o.bind, b.bind));
    if (clash) err(b.path, `${b.what} conflicts with ${clash.label} (${clash.what}): both cannot bind`);
  });

  // ------------------------------------------------------------ upstreams
  const upstreams = cfg.upstreams ?? {};
  const upstreamNames = Object.keys(upstreams);
  const usedUpstreams = new Set<string>();
  for (const [name, u] of Object.entries(upstreams)) {
    const base: PathSegment[] = ['upstreams', name];
    const balancer = u.balancer ?? 'round-robin';
    if (u.hashOn !== undefined && balancer !== 'consistent-hash') {
      err([...base, 'hashOn'], `hashOn is only used by balancer "consistent-hash" (this upstream uses ${JSON.stringify(balancer)})`);
    }
    if (balancer === 'consistent-hash' && u.hashOn === undefined) {
      warn([...base, 'balancer'], 'balancer "consistent-hash" without hashOn falls back to round-robin');
    }
    const origins = new Map<string, number>();
    u.targets.forEach((t, i) => {
      const p: PathSegment[] = [...base, 'targets', i, 'url'];
      let url: URL;
      try { url = new URL(t.url); } catch { err(p, 'not a valid URL (check host and port)'); return; }
      if (url.username !== '' || url.password !== '') err(p, 'target URLs must not contain credentials (user:password@); set an Authorization header in requestHeaders instead');
      if (url.pathname !== '/' || url.search !== '' || url.hash !== '') err(p, 'a target is an origin only: no path, query or fragment');
      const seen = origins.get(url.origin);
      if (seen !== undefined) warn(p, `same origin as targets[${seen}]`);
      else origins.set(url.origin, i);
    });
    if (u.targets.every((t) => t.weight === 0)) warn([...base, 'targets'], 'every target has weight 0 (drained): requests to this upstream will fail with 503');
    checkUpstreamTls(u, base, err, warn);
    const host = u.healthCheck?.active?.host;
    if (host !== undefined && CTL_IN_HEADER_VALUE.test(host)) err([...base, 'healthCheck', 'active', 'host'], 'header value must not contain CR, LF or NUL');
  }

  // ------------------------------------------------------------ routes
  const routeIds = new Map<string, number>();
  cfg.routes.forEach((r, i) => {
    const base: PathSegment[] = ['routes', i];
    const first = routeIds.get(r.id);
    if (first !== undefined) err([...base, 'id'], `duplicate route id ${JSON.stringify(r.id)} (also routes[${first}])`);
    else routeIds.set(r.id, i);

    if (r.upstream === undefined && r.respond === undefined) err(base, 'a route needs exactly one of "upstream" or "respond" (it has neither)');
    if (r.upstream !== undefined && r.respond !== undefined) err(base, 'a route needs exactly one of "upstream" or "respond" (it has both)');
    if (r.upstream !== undefined) {
      usedUpstreams.add(r.upstream);
      if (!Object.hasOwn(upstreams, r.upstream)) {
        const s = suggest(r.upstream, upstreamNames);
        const hint = s ? `; did you mean ${JSON.stringify(s)}?` : upstreamNames.length === 0 ? ' (no upstreams are defined)' : '';
        err([...base, 'upstream'], `unknown upstream ${JSON.stringify(r.upstream)}${hint}`);
      }
    }
    if (r.websocket === true && r.respond !== undefined) err([...base, 'websocket'], 'websocket needs an upstream; a "respond" route cannot upgrade');

    if (r.listeners !== undefined) {
      if (r.listeners.length === 0) warn([...base, 'listeners'], 'an empty list means the route is served on no listener');
      r.listeners.forEach((name, j) => {
        if (listenerNames.has(name)) return;
        const s = suggest(name, listenerNames.keys());
        err([...base, 'listeners', j], `unknown listener ${JSON.stringify(name)}${s ? `; did you mean ${JSON.stringify(s)}?` : ''}`);
      });
    }

    // -- path matching
    const m = r.match;
    if (m.path !== undefined && m.pathPrefix !== undefined) err([...base, 'match'], 'use either "path" or "pathPrefix", not both');
    let pattern: PathPatternInfo | undefined;
    if (m.path !== undefined) {
      pattern = analyzePathPattern(m.path);
      for (const msg of pattern.problems) err([...base, 'match', 'path'], msg);
    }
    if (m.pathPrefix !== undefined && m.pathPrefix.split('/').some((s) => s.includes('*') || s.startsWith(':'))) {
      err([...base, 'match', 'pathPrefix'], 'pathPrefix is matched literally; for ":param" or "*" use "path" (e.g. "/api/:id/*")');
    }
    if (r.stripPrefix !== undefined) {
      const sp = r.stripPrefix;
      const matched = m.path ?? m.pathPrefix;
      const norm = (s: string): string => (m.caseInsensitive === true ? s.toLowerCase() : s);
      if (sp.split('/').some((s) => s.includes('*') || s.startsWith(':'))) {
        err([...base, 'stripPrefix'], 'stripPrefix is literal; it cannot contain ":param" or "*" segments');
      } else if (matched === undefined) {
        err([...base, 'stripPrefix'], 'stripPrefix needs match.path or match.pathPrefix that begins with it');
      } else {
        const a = norm(matched);
        const b = norm(sp);
        const ok = b === '/' || a === b || a.startsWith(b.endsWith('/') ? b : `${b}/`);
        if (!ok) err([...base, 'stripPrefix'], `${JSON.stringify(sp)} is not a prefix (on segment boundaries) of the route's ${m.path !== undefined ? 'match.path' : 'match.pathPrefix'} ${JSON.stringify(matched)}`);
      }
    }
    if (r.rewritePath !== undefined) {
      const captured = pattern ?? { params: [], wildcard: false, problems: [] };
      for (const seg of r.rewritePath.split('/').slice(1)) {
        if (seg.startsWith(':')) {
          const name = seg.slice(1);
          if (!captured.params.includes(name)) {
            err([...base, 'rewritePath'], `${JSON.stringify(seg)} is not captured by match.path${captured.params.length > 0 ? ` (captured: ${captured.params.map((p) => `:${p}`).join(', ')})` : ''}`);
          }
        } else if (seg === '*' && !captured.wildcard) {
          err([...base, 'rewritePath'], '"*" needs a match.path ending in "/*"');
        }
      }
    }

    // -- stages that cannot work on a WebSocket route (e.g. the response cache: a tunnel has no response to store)
    if (r.websocket === true) {
      for (const m of stages) {
        if (m.upgrades === 'incompatible' && (r as Record<string, unknown>)[m.configKey] !== undefined) {
          err([...base, m.configKey], `the ${m.name} stage cannot run on a route with "websocket: true"; move the WebSocket path to a route of its own`);
        }
      }
    }
    const ct = r.respond?.contentType;
    if (ct !== undefined && CTL_IN_HEADER_VALUE.test(ct)) err([...base, 'respond', 'contentType'], 'header value must not contain CR, LF or NUL');
  });

  for (const name of upstreamNames) {
    if (!usedUpstreams.has(name)) warn(['upstreams', name], `upstream ${JSON.stringify(name)} is not used by any route`);
  }

  // ------------------------------------------------------------ server
  cfg.server?.trustedProxies?.forEach((entry, i) => {
    const r = checkTrustedProxy(entry);
    if (!r.ok) err(['server', 'trustedProxies', i], `invalid IP address or CIDR block ${JSON.stringify(entry)} (examples: 10.0.0.0/8, 192.168.1.10, ::1, or loopback / private / linklocal)`);
    else if (r.warning) warn(['server', 'trustedProxies', i], r.warning);
  });
  const via = cfg.server?.via;
  if (via !== undefined && CTL_IN_HEADER_VALUE.test(via)) err(['server', 'via'], 'header value must not contain CR, LF or NUL');

  const rid = cfg.requestId?.header;
  if (rid !== undefined) {
    const lower = rid.toLowerCase();
    if (HOP_BY_HOP_HEADERS.has(lower)) err(['requestId', 'header'], `${JSON.stringify(rid)} is a hop-by-hop header; it is removed at every hop and cannot carry a request id`);
    else if (lower === 'content-length' || lower === 'host') err(['requestId', 'header'], `${JSON.stringify(rid)} cannot carry a request id`);
  }

  // ------------------------------------------------------------ foundations, then every registered stage
  for (const check of FOUNDATION_CHECKS) out.push(...check(cfg));
  for (const m of stages) out.push(...m.check(cfg));
  return out;
}
