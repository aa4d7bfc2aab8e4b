// Configuration checks for token issuers and introspection servers, and the routes that reference them
// (run by src/config/semantic.ts). Messages never echo secrets or URLs.
import ipaddr from 'ipaddr.js';
import type { GatewayConfig } from '../../config/schema.js';
import type { SemanticIssue } from '../../config/issues.js';
import { formatPath, suggest, type PathSegment } from '../../config/issues.js';
import { hasPrivateMembers, isHmac, MIN_SECRET_BYTES } from './jwk.js';

const B64URL = /^[A-Za-z0-9_-]+={0,2}$/;

/** http:// to something other than loopback: keys or client secrets travel in clear, or can be swapped. */
function plaintextRemote(url: string): boolean {
  let u: URL;
  try { u = new URL(url); } catch { return false; }
  if (u.protocol !== 'http:') return false;
  const host = u.hostname.replace(/^\[|\]$/g, '');
  if (host === 'localhost') return false;
  return !(ipaddr.isValid(host) && ipaddr.process(host).range() === 'loopback');
}

export function issuerIssues(cfg: GatewayConfig): SemanticIssue[] {
  const out: SemanticIssue[] = [];
  const err = (path: PathSegment[], message: string): void => { out.push({ path: formatPath(path), message, severity: 'error' }); };
  const warn = (path: PathSegment[], message: string): void => { out.push({ path: formatPath(path), message, severity: 'warning' }); };
  const issuers = cfg.identity?.issuers ?? {};
  const servers = cfg.identity?.introspection ?? {};

  for (const [name, iss] of Object.entries(issuers)) {
    const base: PathSegment[] = ['identity', 'issuers', name];
    const sources = [iss.keys !== undefined && 'keys', iss.jwksUri !== undefined && 'jwksUri', iss.discovery === true && 'discovery'].filter((s): s is string => s !== false);
    if (sources.length !== 1) {
      err(base, sources.length === 0
        ? 'no key source: set one of keys, jwksUri or discovery: true'
        : `one key source only (found ${sources.join(', ')}): keys from several places make it unclear which keys sign this issuer's tokens`);
    }
    const hmac = iss.algorithms.filter(isHmac);
    const asymmetric = iss.algorithms.filter((a) => !isHmac(a));
    if (hmac.length > 0 && asymmetric.length > 0) {
      err([...base, 'algorithms'], `${hmac.join(', ')} together with ${asymmetric.join(', ')} on one issuer invites algorithm confusion (a public key used as an HMAC secret): define a separate issuer for the shared-secret tokens`);
    }
    const secrets = (iss.keys ?? []).filter((k) => 'secret' in k).length;
    if (hmac.length > 0 && (iss.keys === undefined || secrets === 0)) {
      err([...base, 'algorithms'], `${hmac.join(', ')} need a shared secret (keys: [{ secret: ... }]); JWKS and discovery only provide public keys`);
    }
    (iss.keys ?? []).forEach((k, j) => {
      const kp: PathSegment[] = [...base, 'keys', j];
      if ('secret' in k) {
        if (hmac.length === 0) err(kp, 'an HMAC secret is only usable with HS256, HS384 or HS512 in algorithms');
        const s = k.secret.trim();
        if (!B64URL.test(s)) err([...kp, 'secret'], 'the secret must be base64url-encoded');
        else if (Buffer.from(s, 'base64url').length < MIN_SECRET_BYTES) err([...kp, 'secret'], `the secret must be at least ${MIN_SECRET_BYTES} bytes (256 bits) once decoded`);
      } else if ('pem' in k) {
        if (k.alg !== undefined && !iss.algorithms.includes(k.alg)) err([...kp, 'alg'], `${k.alg} is not in this issuer's algorithms`);
        if (k.alg !== undefined && isHmac(k.alg)) err([...kp, 'alg'], 'a PEM key is a public key: it never verifies HMAC tokens');
        if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(k.pem)) err([...kp, 'pem'], 'this is a private key: configure the public key or certificate (the gateway only verifies)');
      } else {
        if (k.jwk.kty === 'oct') err([...kp, 'jwk'], 'symmetric JWKs are not accepted: configure HMAC keys as { secret: ... }');
        else if (hasPrivateMembers(k.jwk)) err([...kp, 'jwk'], 'the JWK holds private key members: configure the public key only');
      }
    });
    const j = iss.jwks;
    if (j !== undefined) {
      if (iss.keys !== undefined) warn([...base, 'jwks'], 'jwks settings have no effect with static keys');
      if (j.minRefreshMs !== undefined && j.maxRefreshMs !== undefined && j.minRefreshMs > j.maxRefreshMs) err([...base, 'jwks', 'minRefreshMs'], 'minRefreshMs is larger than maxRefreshMs');
    }
    if (iss.discovery === true && !/^https?:\/\/[^/?#]+/.test(iss.issuer)) err([...base, 'issuer'], 'with discovery, issuer must be an http(s) URL (the metadata is fetched from it)');
    if (iss.jwksUri !== undefined && plaintextRemote(iss.jwksUri)) warn([...base, 'jwksUri'], 'plain http to a non-loopback host: anyone on the path can replace the keys; use https');
    if (iss.discovery === true && plaintextRemote(iss.issuer)) warn([...base, 'issuer'], 'plain http to a non-loopback host: anyone on the path can replace the metadata and keys; use https');
  }

  for (const [name, s] of Object.entries(servers)) {
    if (plaintextRemote(s.endpoint)) warn(['identity', 'introspection', name, 'endpoint'], 'plain http to a non-loopback host: the client secret and every token travel in clear; use https');
  }

  cfg.routes.forEach((r, i) => {
    const methods = r.authentication?.methods ?? [];
    let firstBearer: { kind: string; j: number } | undefined;
    methods.forEach((m, j) => {
      const mp: PathSegment[] = ['routes', i, 'authentication', 'methods', j];
      if ('jwt' in m) {
        const seenIss = new Map<string, string>();
        const seenName = new Set<string>();
        m.jwt.issuers.forEach((name, k) => {
          const p: PathSegment[] = [...mp, 'jwt', 'issuers', k];
          if (seenName.has(name)) { err(p, `issuer ${JSON.stringify(name)} is listed twice`); return; }
          seenName.add(name);
          const iss = issuers[name];
          if (iss === undefined) {
            const hint = suggest(name, Object.keys(issuers));
            err(p, `unknown issuer ${JSON.stringify(name)}${hint !== undefined ? ` (did you mean ${JSON.stringify(hint)}?)` : ''}: define it under identity.issuers`);
            return;
          }
          const other = seenIss.get(iss.issuer);
          if (other !== undefined) err(p, `issuers ${JSON.stringify(other)} and ${JSON.stringify(name)} expect the same iss value: a token could not be attributed to one of them`);
          seenIss.set(iss.issuer, name);
        });
      }
      if ('introspection' in m && servers[m.introspection.server] === undefined) {
        const hint = suggest(m.introspection.server, Object.keys(servers));
        err([...mp, 'introspection', 'server'], `unknown introspection server ${JSON.stringify(m.introspection.server)}${hint !== undefined ? ` (did you mean ${JSON.stringify(hint)}?)` : ''}: define it under identity.introspection`);
      }
      const kind = 'jwt' in m ? 'jwt' : 'introspection' in m ? 'introspection' : undefined;
      if (kind === undefined) return;
      if (firstBearer === undefined) firstBearer = { kind, j };
      else if (firstBearer.kind !== kind) {
        warn(mp, `methods[${firstBearer.j}] (${firstBearer.kind}) decides every Bearer token first, so this ${kind} method never sees one: ${firstBearer.kind === 'jwt' ? 'opaque tokens are refused as malformed JWTs' : 'JWTs are introspected'}`);
      }
    });
  });
  return out;
}
