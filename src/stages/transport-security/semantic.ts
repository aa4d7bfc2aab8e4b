// Configuration checks for plaintext modes and HSTS (run by src/config/semantic.ts).
import ipaddr from 'ipaddr.js';
import type { GatewayConfig } from '../../config/schema.js';
import type { SemanticIssue } from '../../config/issues.js';
import { formatPath, type PathSegment } from '../../config/issues.js';
import { HSTS_DEFAULT_MAX_AGE, HSTS_HEADER } from './hsts.js';

function isLoopbackBind(address: string): boolean {
  if (address.toLowerCase() === 'localhost') return true;
  if (!ipaddr.isValid(address)) return false;
  return ipaddr.process(address).range() === 'loopback';
}

export function transportSecurityIssues(cfg: GatewayConfig): SemanticIssue[] {
  const out: SemanticIssue[] = [];
  const err = (path: PathSegment[], message: string): void => { out.push({ path: formatPath(path), message, severity: 'error' }); };
  const warn = (path: PathSegment[], message: string): void => { out.push({ path: formatPath(path), message, severity: 'warning' }); };
  const tlsNames = cfg.listeners.filter((l) => l.tls !== undefined).map((l) => l.name);

  cfg.listeners.forEach((l, i) => {
    const base: PathSegment[] = ['listeners', i];
    if (l.tls !== undefined) {
      if (l.plaintext !== undefined) err([...base, 'plaintext'], 'plaintext applies to plain-HTTP listeners only; this listener has tls');
      const h = l.hsts;
      if (h !== undefined && h !== false && h.preload === true) {
        if (h.includeSubDomains === false) err([...base, 'hsts', 'preload'], 'preload requires includeSubDomains (browser preload lists refuse it otherwise)');
        if ((h.maxAge ?? HSTS_DEFAULT_MAX_AGE) < HSTS_DEFAULT_MAX_AGE) err([...base, 'hsts', 'preload'], `preload requires maxAge of at least ${HSTS_DEFAULT_MAX_AGE} (one year)`);
      }
      return;
    }
    if (l.hsts !== undefined && l.hsts !== false) warn([...base, 'hsts'], 'HSTS is only sent by TLS listeners; it has no effect on this plain-HTTP listener');
    const pt = l.plaintext;
    if (pt === undefined) return;
    if (pt.mode === 'serve' && tlsNames.length > 0 && !isLoopbackBind(l.address ?? '0.0.0.0')) {
      warn([...base, 'plaintext', 'mode'], `this plain-HTTP listener serves requests while TLS listeners exist (${tlsNames.map((n) => JSON.stringify(n)).join(', ')}): traffic on it is unencrypted; use "redirect" or "reject" unless a TLS-terminating proxy is in front`);
    }
    if (pt.mode !== 'redirect' && pt.httpsPort !== undefined) warn([...base, 'plaintext', 'httpsPort'], `httpsPort is only used by mode "redirect" (this listener uses ${JSON.stringify(pt.mode)})`);
  });

  // The listener owns Strict-Transport-Security: a route must not send it on plain HTTP or weaken it.
  cfg.routes.forEach((r, i) => {
    const rh = r.responseHeaders;
    if (rh === undefined) return;
    for (const op of ['set', 'add'] as const) {
      for (const name of Object.keys(rh[op] ?? {})) {
        if (name.toLowerCase() === HSTS_HEADER) err(['routes', i, 'responseHeaders', op, name], 'Strict-Transport-Security is set by the listener (listeners[].hsts), never by a route');
      }
    }
    (rh.remove ?? []).forEach((name, j) => {
      if (name.toLowerCase() === HSTS_HEADER) warn(['routes', i, 'responseHeaders', 'remove', j], 'has no effect: Strict-Transport-Security comes from the listener (set hsts: false there)');
    });
  });
  return out;
}
