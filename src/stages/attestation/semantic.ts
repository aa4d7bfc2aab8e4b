// Configuration checks for app attestation (run by src/config/semantic.ts): verifiers and the routes
// that use them. Messages never echo secrets.
import type { GatewayConfig } from '../../config/schema.js';
import type { SemanticIssue } from '../../config/issues.js';
import { formatPath, type PathSegment } from '../../config/issues.js';

import { MIN_SECRET_BYTES } from '../../identity/jwt/jwk.js';
const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;
/** headers the gateway or the connection owns, and credentials other stages read */
const RESERVED_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'upgrade', 'te', 'trailer', 'authorization', 'cookie', 'dpop', 'x-forwarded-for', 'forwarded']);

export function attestationIssues(cfg: GatewayConfig): SemanticIssue[] {
  const out: SemanticIssue[] = [];
  const err = (path: PathSegment[], message: string): void => { out.push({ path: formatPath(path), message, severity: 'error' }); };
  const warn = (path: PathSegment[], message: string): void => { out.push({ path: formatPath(path), message, severity: 'warning' }); };
  const verifiers = cfg.identity?.attestation ?? {};

  for (const [name, v] of Object.entries(verifiers)) {
    const base: PathSegment[] = ['identity', 'attestation', name];
    const sources = ['secret', 'keys', 'jwksUri'].filter((k) => (v as Record<string, unknown>)[k] !== undefined);
    if (sources.length !== 1) err(base, `needs exactly one key source: secret, keys or jwksUri (has ${sources.length === 0 ? 'none' : sources.join(', ')})`);
    const hmac = v.algorithms.filter((a) => a.startsWith('HS'));
    const asym = v.algorithms.filter((a) => !a.startsWith('HS'));
    const hasSecretKey = v.secret !== undefined || (v.keys ?? []).some((k) => 'secret' in k);
    if (hmac.length > 0 && !hasSecretKey) err([...base, 'algorithms'], `${hmac.join(', ')} need a shared secret (secret): with public keys they would invite algorithm confusion`);
    if (v.secret !== undefined) {
      if (asym.length > 0) err([...base, 'algorithms'], `a secret verifies HS256/HS384/HS512 tokens only: remove ${asym.join(', ')}`);
      const s = v.secret.trim();
      if (!BASE64.test(s)) err([...base, 'secret'], 'must be base64-encoded');
      else if (Buffer.from(s, 'base64').length < MIN_SECRET_BYTES) err([...base, 'secret'], `must decode to at least ${MIN_SECRET_BYTES} bytes`);
    }
    if (v.jwksUri !== undefined && v.jwksUri.startsWith('http://')) warn([...base, 'jwksUri'], 'fetched over plain http: anyone on the path can substitute the verification keys');
  }

  cfg.routes.forEach((r, i) => {
    const a = r.attestation;
    if (a === undefined) return;
    const base: PathSegment[] = ['routes', i, 'attestation'];
    if (!Object.hasOwn(verifiers, a.verifier)) {
      const known = Object.keys(verifiers);
      err([...base, 'verifier'], `no verifier ${JSON.stringify(a.verifier)} under identity.attestation${known.length > 0 ? ` (have: ${known.join(', ')})` : ''}`);
    }
    if (a.header !== undefined && RESERVED_HEADERS.has(a.header.toLowerCase())) {
      err([...base, 'header'], `${JSON.stringify(a.header)} cannot carry the attestation token: the header is removed before the request goes upstream`);
    }
    if (a.bindingClaim !== undefined && r.authentication === undefined) {
      warn([...base, 'bindingClaim'], 'the route has no authentication: the token is bound to an Authorization value nobody verifies');
    }
  });
  return out;
}
