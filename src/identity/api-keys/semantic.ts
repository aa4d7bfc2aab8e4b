// Configuration checks for API keys (run by src/config/semantic.ts): what the schema cannot express.
import type { GatewayConfig } from '../../config/schema.js';
import type { SemanticIssue } from '../../config/issues.js';
import { formatPath, type PathSegment } from '../../config/issues.js';
import { parseCidrList } from '../../net/cidr.js';
import { DEFAULT_SECRET_QUERY } from '../../config/credentials.js';
import { normalizeOrigin } from './records.js';

export function apiKeyIssues(cfg: GatewayConfig): SemanticIssue[] {
  const out: SemanticIssue[] = [];
  const err = (path: PathSegment[], message: string): void => { out.push({ path: formatPath(path), message, severity: 'error' }); };
  const warn = (path: PathSegment[], message: string): void => { out.push({ path: formatPath(path), message, severity: 'warning' }); };
  const identity = cfg.identity;
  const consumers = identity?.consumers ?? [];
  const now = Date.now();

  // --- configured consumers and their keys
  const consumerIds = new Map<string, number>();
  const keyIds = new Map<string, PathSegment[]>();
  const hashes = new Map<string, string>();
  let configuredKeys = 0;
  consumers.forEach((c, i) => {
    const base: PathSegment[] = ['identity', 'consumers', i];
    const first = consumerIds.get(c.id);
    if (first !== undefined) err([...base, 'id'], `duplicate consumer id ${JSON.stringify(c.id)} (also identity.consumers[${first}])`);
    else consumerIds.set(c.id, i);
    (c.apiKeys ?? []).forEach((k, j) => {
      configuredKeys++;
      const kp: PathSegment[] = [...base, 'apiKeys', j];
      const prev = keyIds.get(k.id);
      if (prev !== undefined) err([...kp, 'id'], `duplicate API key id ${JSON.stringify(k.id)} (also ${formatPath(prev)})`);
      else keyIds.set(k.id, kp);
      const sameHash = hashes.get(k.hash);
      if (sameHash !== undefined) err([...kp, 'hash'], `the same key hash as API key ${JSON.stringify(sameHash)}: each key must be distinct`);
      else hashes.set(k.hash, k.id);
      if (k.cidrs !== undefined) {
        const p = parseCidrList(k.cidrs);
        if (!p.ok) for (const e of p.errors) err([...kp, 'cidrs', e.index], e.reason);
      }
      k.origins?.forEach((o, m) => {
        if (normalizeOrigin(o) === undefined) err([...kp, 'origins', m], 'not an origin such as https://app.example.com');
      });
      if (k.expiresAt !== undefined) {
        const t = Date.parse(k.expiresAt);
        if (!Number.isNaN(t) && t <= now) warn([...kp, 'expiresAt'], 'this key has expired: every request with it is refused');
      }
    });
  });

  // --- routes using the apiKey method
  let routesWithKeys = 0;
  const redacted = new Set([...DEFAULT_SECRET_QUERY, ...(cfg.accessLog?.redactQuery ?? []).map((q) => q.toLowerCase())]);
  cfg.routes.forEach((r, i) => {
    r.authentication?.methods.forEach((m, j) => {
      if (!('apiKey' in m)) return;
      routesWithKeys++;
      const a = m.apiKey;
      const p: PathSegment[] = ['routes', i, 'authentication', 'methods', j, 'apiKey'];
      // (no key source and the query-string warning are authenticationIssues')
      if (typeof a.header === 'string' && a.header.toLowerCase() === 'authorization') {
        err([...p, 'header'], 'use authorizationScheme: true for `Authorization: ApiKey <key>` instead');
      }
      // With hideCredentials the method removes the parameter from the query, so the access log never has it.
      if (a.queryParam !== undefined && a.hideCredentials === false && !redacted.has(a.queryParam.toLowerCase())) {
        warn([...p, 'queryParam'], `the key stays in the query string and reaches the access log: add ${JSON.stringify(a.queryParam)} to accessLog.redactQuery`);
      }
    });
  });

  const needsPepper = routesWithKeys > 0 || configuredKeys > 0;
  if (needsPepper && identity?.pepper === undefined) {
    err(identity === undefined ? ['identity'] : ['identity', 'pepper'], 'API keys are used but identity.pepper is not set (a secret of at least 32 characters, e.g. pepper: ${PORTCULLIS_KEY_PEPPER})');
  }
  if (routesWithKeys > 0 && configuredKeys === 0 && identity?.keyStore === undefined) {
    warn(['identity'], 'routes accept API keys but no key can exist: add identity.keyStore or identity.consumers[].apiKeys');
  }
  return out;
}
