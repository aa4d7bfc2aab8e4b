// `portcullis validate` checks of a listener's `tls` block that need the files: unreadable files, key
// mismatches, wrong passphrases, expired or soon-expiring certificates, names the certificate does not
// cover, and the cipher policy. Wired into the semantic checks by src/config/semantic.ts.
import type { ListenerTlsConfig } from '../config/schema.js';
import { loadTlsFiles, type PathSegment, type TlsProblem } from './load.js';
import { CipherStringError, resolveCiphers } from './policy.js';

export interface TlsCheckResult {
  errors: TlsProblem[];
  warnings: TlsProblem[];
}

/**
 * Checks one listener's `tls` block against the files on disk. Paths in the result are `basePath`
 * (e.g. ['listeners', 0, 'tls']) followed by the field, e.g. [..., 'certificates', 1, 'key'].
 */
export function checkTlsFiles(cfg: ListenerTlsConfig, baseDir: string, basePath: readonly PathSegment[] = [], now = Date.now()): TlsCheckResult {
  const errors: TlsProblem[] = [];
  const warnings: TlsProblem[] = [];
  const add = (p: TlsProblem) => (p.severity === 'error' ? errors : warnings).push({ ...p, path: [...basePath, ...p.path] });
  try {
    const policy = resolveCiphers(cfg.ciphers, cfg.allowInsecureCiphers === true);
    if (policy.insecure.length > 0) {
      add({ path: ['ciphers'], severity: 'warning', message: `allowInsecureCiphers: cipher suites without forward secrecy or AEAD are negotiable: ${policy.insecure.join(', ')}` });
    }
  } catch (err) {
    if (!(err instanceof CipherStringError)) throw err;
    add({ path: ['ciphers'], severity: 'error', message: err.message });
  }
  for (const p of loadTlsFiles(cfg, baseDir, now).problems) add(p);
  return { errors, warnings };
}
