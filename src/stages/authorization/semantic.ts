// Configuration checks for route `authorization:` blocks (run by src/config/semantic.ts).
import type { GatewayConfig } from '../../config/schema.js';
import type { SemanticIssue } from '../../config/issues.js';
import { formatPath, type PathSegment } from '../../config/issues.js';
import type { AccessPolicyConfig } from './schema.js';

/** RFC 6749 3.3 scope-token: 1*( %x21 / %x23-5B / %x5D-7E ) — what a token's `scope` can contain. */
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

export function authorizationIssues(cfg: GatewayConfig): SemanticIssue[] {
  const out: SemanticIssue[] = [];
  const err = (path: PathSegment[], message: string): void => { out.push({ path: formatPath(path), message, severity: 'error' }); };
  const warn = (path: PathSegment[], message: string): void => { out.push({ path: formatPath(path), message, severity: 'warning' }); };

  cfg.routes.forEach((r, i) => {
    const az = r.authorization;
    if (az === undefined) return;
    const base: PathSegment[] = ['routes', i, 'authorization'];
    if (r.authentication === undefined && r.clientCert === undefined) {
      err(base, 'nothing on this route establishes an identity: add an authentication block (or clientCert)');
    }
    const methods = r.authentication?.methods ?? [];
    const hasToken = methods.some((m) => 'jwt' in m || 'introspection' in m);

    const checkPolicy = (p: AccessPolicyConfig, path: PathSegment[]): void => {
      const scopes = p.scopes === undefined ? [] : 'allOf' in p.scopes ? p.scopes.allOf : p.scopes.anyOf;
      const key = p.scopes === undefined ? undefined : 'allOf' in p.scopes ? 'allOf' : 'anyOf';
      scopes.forEach((s, j) => {
        if (!SCOPE_TOKEN.test(s)) err([...path, 'scopes', key!, j], 'not a valid scope (RFC 6749 3.3: visible ASCII without spaces, `"` or `\\`): no token can carry it');
      });
      const mfa = p.mfa;
      if (mfa === undefined) return;
      if (mfa.amr === undefined && mfa.acr === undefined) {
        err([...path, 'mfa'], 'set amr (e.g. [mfa, otp, hwk]) or acr (accepted authentication context classes): without them no token can satisfy the policy');
      }
      mfa.acr?.forEach((v, j) => {
        if (/\s/.test(v)) err([...path, 'mfa', 'acr', j], 'acr values are sent space-separated in acr_values and cannot contain whitespace');
      });
      if (!hasToken) {
        warn([...path, 'mfa'], 'MFA is shown by token claims (amr, acr, auth_time), but this route accepts no jwt or introspection method: every request is refused');
      }
    };

    const { methods: perMethod, ...routeLevel } = az;
    checkPolicy(routeLevel, base);
    const matched = r.match.methods;
    for (const [m, p] of Object.entries(perMethod ?? {})) {
      const path = [...base, 'methods', m];
      if (matched !== undefined && !matched.includes(m)) {
        warn(path, `the route only matches ${matched.join(', ')}: this ${m} policy never applies`);
      }
      checkPolicy(p, path);
    }
  });

  return out;
}
