// Per-listener transport security, compiled once per configuration generation: the HSTS value of TLS
// listeners and the plaintext policy of plain ones (see docs/transport-security.md).
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { X509Certificate } from 'node:crypto';
import type { GatewayConfig, ListenerConfig } from '../../config/schema.js';
import { compileHsts } from './hsts.js';
import { certificateDnsNames, compilePlaintextPolicy, knownHostNames, resolvePlaintextMode, type KnownHosts, type PlaintextPolicy } from './plaintext.js';

export { compileHsts, HSTS_HEADER, HSTS_DEFAULT_MAX_AGE } from './hsts.js';
export { answerPlaintext, redirectHost, redirectLocation, resolvePlaintextMode, knownHostNames, type PlaintextPolicy, type PlaintextMode } from './plaintext.js';
export { transportSecurityIssues } from './semantic.js';

export interface ListenerTransport {
  /** Strict-Transport-Security value for every response (TLS listeners only), or undefined */
  readonly hsts: string | undefined;
  /** what a plain listener does instead of serving, or undefined when it serves */
  readonly plaintext: PlaintextPolicy | undefined;
}

/** Names in a certificate file (DNS SANs, else the CN); [] when it cannot be read (the TLS setup reports that). */
export function readCertificateNames(file: string, baseDir: string): string[] {
  try {
    const x = new X509Certificate(readFileSync(resolve(baseDir, file)));
    return certificateDnsNames(x.subjectAltName, x.subject);
  } catch {
    return [];
  }
}

/** Returns the per-listener compiler; the known host names are gathered once, and only if a listener redirects. */
export function compileTransportSecurity(cfg: Pick<GatewayConfig, 'listeners' | 'routes'>, baseDir: string = process.cwd()): (l: ListenerConfig) => ListenerTransport {
  let known: KnownHosts | undefined;
  return (l) => {
    let plaintext: PlaintextPolicy | undefined;
    if (resolvePlaintextMode(l, cfg) !== 'serve') {
      known ??= knownHostNames(cfg, (file) => readCertificateNames(file, baseDir));
      plaintext = compilePlaintextPolicy(l, cfg, known);
    }
    return { hsts: compileHsts(l), plaintext };
  };
}
