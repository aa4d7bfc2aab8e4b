// Configuration checks for route `rateLimit:` blocks and the top-level `rateLimiting:` plans (run by src/config/semantic.ts).
import type { GatewayConfig } from '../../config/schema.js';
import type { SemanticIssue } from '../../config/issues.js';
import { formatPath, type PathSegment } from '../../config/issues.js';
import type { RateLimitRule } from './schema.js';

export function rateLimitIssues(cfg: GatewayConfig): SemanticIssue[] {
  const out: SemanticIssue[] = [];
  const err = (path: PathSegment[], message: string): void => { out.push({ path: formatPath(path), message, severity: 'error' }); };
  const warn = (path: PathSegment[], message: string): void => { out.push({ path: formatPath(path), message, severity: 'warning' }); };
  const global = cfg.rateLimiting;
  const plans = global?.plans ?? {};

  const checkRule = (r: RateLimitRule, path: PathSegment[], authenticated: boolean): void => {
    const alg = r.algorithm ?? 'fixed-window';
    if (r.mode === 'delay' && alg !== 'token-bucket') err([...path, 'mode'], 'mode delay (throttling) needs algorithm token-bucket, which gives each request an exact slot');
    if (r.mode !== 'delay' && (r.maxDelayMs !== undefined || r.maxQueue !== undefined)) warn(path, 'maxDelayMs / maxQueue only apply with mode: delay');
    if (r.burst !== undefined && alg !== 'token-bucket') warn([...path, 'burst'], 'burst only applies to algorithm token-bucket');
    (r.by ?? []).forEach((p, j) => {
      if (!authenticated && (p === 'consumer' || p === 'apiKey' || (typeof p === 'object' && 'claim' in p))) {
        warn([...path, 'by', j], 'no authentication on this route: every request falls back to the client IP for this key part');
      }
      if (typeof p === 'object' && 'header' in p && !authenticated && (r.by ?? []).length === 1) {
        warn([...path, 'by', j], 'a header chosen by the client alone gives every new value a fresh bucket: combine it with ip or use it behind authentication');
      }
    });
  };

  Object.entries(plans).forEach(([name, p]) => {
    const names = new Set<string>();
    p.limits.forEach((r, i) => {
      checkRule(r, ['rateLimiting', 'plans', name, 'limits', i], true);
      const n = r.name ?? `${name}-${i}`;
      if (names.has(n)) err(['rateLimiting', 'plans', name, 'limits', i, 'name'], `duplicate limit name "${n}"`);
      names.add(n);
    });
  });
  if (global?.defaultPlan !== undefined && plans[global.defaultPlan] === undefined) {
    err(['rateLimiting', 'defaultPlan'], `"${global.defaultPlan}" is not a plan in rateLimiting.plans`);
  }

  cfg.routes.forEach((route, i) => {
    const rl = route.rateLimit;
    if (rl === undefined) return;
    const base: PathSegment[] = ['routes', i, 'rateLimit'];
    const authenticated = route.authentication !== undefined || route.clientCert !== undefined;
    const names = new Set<string>();
    (rl.limits ?? []).forEach((r, j) => {
      checkRule(r, [...base, 'limits', j], authenticated);
      const n = r.name ?? (j === 0 ? 'default' : `limit-${j}`);
      if (names.has(n)) err([...base, 'limits', j, 'name'], `duplicate limit name "${n}" (names identify policies in the RateLimit headers)`);
      names.add(n);
    });
    if (rl.plans === true) {
      if (Object.keys(plans).length === 0) err([...base, 'plans'], 'plans is on but rateLimiting.plans defines no plan');
      if (!authenticated) warn([...base, 'plans'], 'no authentication on this route: every request gets the default plan');
      for (const [pn, p] of Object.entries(plans)) {
        p.limits.forEach((r, j) => { const n = r.name ?? `${pn}-${j}`; if (names.has(n)) err([...base, 'limits'], `limit name "${n}" is also a limit of plan "${pn}"`); });
      }
    } else if ((rl.limits ?? []).length === 0) {
      warn(base, 'no limits and plans off: this block does nothing');
    }
  });
  return out;
}
