// Configuration checks for per-route client certificates (run by src/config/semantic.ts).
import type { GatewayConfig } from '../../config/schema.js';
import type { SemanticIssue } from '../../config/issues.js';
import { formatPath, type PathSegment } from '../../config/issues.js';
import { normalizeFingerprint } from './identity.js';

/**
 * Request headers a forwardHeader may not name: connection-level and framing headers, headers the gateway
 * itself sends upstream, and the client-IP / override headers the handler drops.
 */
export const RESERVED_IDENTITY_HEADERS: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer',
  'transfer-encoding', 'upgrade', 'content-length', 'host', 'expect',
  'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-forwarded-prefix', 'forwarded', 'via',
  'x-real-ip', 'client-ip', 'true-client-ip', 'x-client-ip', 'x-cluster-client-ip', 'cf-connecting-ip', 'fastly-client-ip', 'x-originating-ip',
  'authorization', 'cookie',
]);

export function clientCertIssues(cfg: GatewayConfig): SemanticIssue[] {
  const out: SemanticIssue[] = [];
  const err = (path: PathSegment[], message: string): void => { out.push({ path: formatPath(path), message, severity: 'error' }); };
  const warn = (path: PathSegment[], message: string): void => { out.push({ path: formatPath(path), message, severity: 'warning' }); };
  const requesting = new Set(cfg.listeners.filter((l) => l.tls?.clientCertificate !== undefined).map((l) => l.name));
  const allNames = cfg.listeners.map((l) => l.name);
  const requestIdHeader = (cfg.requestId?.header ?? 'x-request-id').toLowerCase();

  cfg.routes.forEach((r, i) => {
    const cc = r.clientCert;
    if (cc === undefined) return;
    const base: PathSegment[] = ['routes', i, 'clientCert'];
    if (r.listeners !== undefined) {
      for (const name of r.listeners) {
        if (!allNames.includes(name)) continue; // unknown listener: reported by the route checks
        if (!requesting.has(name)) err(base, `listener ${JSON.stringify(name)} does not request client certificates (set its tls.clientCertificate), so this route never sees one`);
      }
    } else if (requesting.size === 0) {
      err(base, 'no listener requests client certificates (set tls.clientCertificate on the listener this route is served on)');
    } else if (cc.required) {
      const others = allNames.filter((n) => !requesting.has(n));
      if (others.length > 0) {
        warn(base, `the route is also served on ${others.map((n) => JSON.stringify(n)).join(', ')}, which do${others.length === 1 ? 'es' : ''} not request client certificates: it always answers 403 there; restrict it with "listeners"`);
      }
    }
    cc.fingerprints?.forEach((f, j) => {
      if (normalizeFingerprint(f) === undefined) err([...base, 'fingerprints', j], 'not a SHA-256 fingerprint: 64 hex digits, optionally colon-separated (AB:CD:...)');
    });
    const fh = cc.forwardHeader;
    if (fh !== undefined) {
      const lower = fh.toLowerCase();
      if (RESERVED_IDENTITY_HEADERS.has(lower) || lower === requestIdHeader) {
        err([...base, 'forwardHeader'], `${JSON.stringify(fh)} cannot carry the client certificate identity: the gateway or the connection owns that header`);
      }
      for (const op of ['set', 'add'] as const) {
        for (const name of Object.keys(r.requestHeaders?.[op] ?? {})) {
          if (name.toLowerCase() === lower) err(['routes', i, 'requestHeaders', op, name], `conflicts with clientCert.forwardHeader: the verified identity would be replaced by a fixed value`);
        }
      }
      (r.requestHeaders?.remove ?? []).forEach((name, j) => {
        if (name.toLowerCase() === lower) err(['routes', i, 'requestHeaders', 'remove', j], 'conflicts with clientCert.forwardHeader: the verified identity would never reach the upstream');
      });
    }
  });

  return out;
}
