// Configuration checks for route authentication blocks (run by src/config/semantic.ts). References to
// issuers and introspection servers are checked with the issuers (src/identity/jwt/semantic.ts).
import type { GatewayConfig } from '../../config/schema.js';
import type { SemanticIssue } from '../../config/issues.js';
import { formatPath, type PathSegment } from '../../config/issues.js';
import { RESERVED_IDENTITY_HEADERS } from '../client-cert/semantic.js';

export function authenticationIssues(cfg: GatewayConfig): SemanticIssue[] {
  const out: SemanticIssue[] = [];
  const err = (path: PathSegment[], message: string): void => { out.push({ path: formatPath(path), message, severity: 'error' }); };
  const warn = (path: PathSegment[], message: string): void => { out.push({ path: formatPath(path), message, severity: 'warning' }); };
  const requestIdHeader = (cfg.requestId?.header ?? 'x-request-id').toLowerCase();

  cfg.routes.forEach((r, i) => {
    const a = r.authentication;
    if (a === undefined) return;
    const base: PathSegment[] = ['routes', i, 'authentication'];
    const credentialHeaders = new Set<string>(['authorization', 'dpop']);
    const kinds = new Map<string, number>();
    a.methods.forEach((m, j) => {
      const kind = Object.keys(m)[0]!;
      const first = kinds.get(kind);
      if (first !== undefined && kind !== 'jwt') warn([...base, 'methods', j], `a second ${kind} method never runs: methods[${first}] finds the same credential first`);
      kinds.set(kind, j);
      if ('apiKey' in m) {
        const k = m.apiKey;
        if (k.header === false && k.authorizationScheme === false && k.queryParam === undefined) err([...base, 'methods', j, 'apiKey'], 'this method accepts the key from nowhere: set header, authorizationScheme or queryParam');
        if (typeof k.header === 'string') credentialHeaders.add(k.header.toLowerCase());
        if (k.queryParam !== undefined) warn([...base, 'methods', j, 'apiKey', 'queryParam'], 'keys in the query string end up in browser history, Referer headers and third-party logs; prefer a header');
      }
    });
    if (a.anonymous !== undefined && a.anonymous !== false && r.authorization !== undefined) {
      warn([...base, 'anonymous'], 'anonymous requests are refused by this route\'s authorization policy whenever it requires anything; anonymous access only helps for methods without requirements');
    }
    const f = a.forward;
    if (f === undefined) return;
    const entries: [PathSegment[], string][] = [];
    for (const k of ['consumer', 'subject', 'scopes', 'roles', 'method'] as const) {
      const h = f[k];
      if (h !== undefined) entries.push([[...base, 'forward', k], h]);
    }
    for (const [claim, h] of Object.entries(f.claims ?? {})) entries.push([[...base, 'forward', 'claims', claim], h]);
    const seen = new Map<string, string>();
    for (const [path, h] of entries) {
      const lower = h.toLowerCase();
      if (RESERVED_IDENTITY_HEADERS.has(lower) || lower === requestIdHeader || credentialHeaders.has(lower)) {
        err(path, `${JSON.stringify(h)} cannot carry identity: the gateway, the connection or a credential owns that header`);
      }
      const dup = seen.get(lower);
      if (dup !== undefined) err(path, `${JSON.stringify(h)} is already used for ${dup}`);
      seen.set(lower, formatPath(path));
      for (const op of ['set', 'add'] as const) {
        for (const name of Object.keys(r.requestHeaders?.[op] ?? {})) {
          if (name.toLowerCase() === lower) err(['routes', i, 'requestHeaders', op, name], `conflicts with authentication.forward: the verified identity would be replaced by a fixed value`);
        }
      }
    }
  });
  return out;
}
