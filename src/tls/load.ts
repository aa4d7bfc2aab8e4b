// Reading and checking the certificate, key and CA files of a listener's `tls` block. Shared by the
// running TLS manager (which throws on the first problem) and `checkTlsFiles` (which reports them all).
// Messages name the configuration path and the file, never a stack.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import type { ListenerTlsConfig } from '../config/schema.js';

export type PathSegment = string | number;

export interface TlsProblem {
  /** path inside the listener's `tls` block, e.g. ['certificates', 0, 'key'] */
  path: PathSegment[];
  message: string;
  severity: 'error' | 'warning';
}

export interface LoadedCertificate {
  readonly index: number;
  /** the certificate file as configured (label in logs and metrics) */
  readonly name: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly certPem: string;
  readonly keyPem: string;
  readonly passphrase: string | undefined;
  /** lower-case exact names and `*.suffix` wildcards this certificate is served for */
  readonly serverNames: readonly string[];
  /** DNS names in the certificate (SAN) */
  readonly dnsNames: readonly string[];
  /** 'rsa', 'ec', 'rsa-pss', 'ed25519', ... */
  readonly keyType: string;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly fingerprint256: string;
}

export interface LoadedTls {
  readonly certificates: readonly LoadedCertificate[];
  readonly clientCa: string | undefined;
  /** every file read, with its content: a reload rebuilds only when one of them changed */
  readonly contents: ReadonlyMap<string, string>;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
const SAN_DNS = /(?:^|, )DNS:([^,\s]+)/g;

function reasonOf(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  switch (e.code) {
    case 'ENOENT': return 'no such file';
    case 'EACCES':
    case 'EPERM': return 'permission denied';
    case 'EISDIR': return 'is a directory, not a file';
    default: return e.message ?? String(err);
  }
}

function read(file: string, baseDir: string, contents: Map<string, string>): { abs: string; text: string } | { abs: string; error: string } {
  const abs = resolve(baseDir, file);
  try {
    const text = readFileSync(abs, 'utf8');
    contents.set(abs, text);
    return { abs, text };
  } catch (err) {
    return { abs, error: `cannot read ${abs}: ${reasonOf(err)}` };
  }
}

function parseChain(text: string): X509Certificate[] | string {
  const blocks = text.match(PEM_CERT);
  if (blocks === null) return 'no PEM certificate in the file';
  try {
    return blocks.map((b) => new X509Certificate(b));
  } catch (err) {
    return `invalid PEM certificate (${(err as Error).message})`;
  }
}

/** The private key, or why it cannot be used (no PEM key, encrypted without passphrase, wrong passphrase). */
export function parseKey(text: string, passphrase: string | undefined): KeyObject | string {
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) return 'no PEM private key in the file';
  try {
    return createPrivateKey({ key: text, format: 'pem', ...(passphrase !== undefined ? { passphrase } : {}) });
  } catch (err) {
    const e = err as { code?: string; message?: string };
    const encrypted = /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(text);
    if (encrypted && passphrase === undefined) return 'the key is encrypted: set `passphrase`';
    if (encrypted) return 'cannot decrypt the key: wrong passphrase';
    return `invalid private key (${e.message ?? 'unreadable'})`;
  }
}

/** DNS names of a certificate's subjectAltName, lower-case. */
export function dnsNamesOf(x: X509Certificate): string[] {
  const out: string[] = [];
  const san = x.subjectAltName;
  if (san === undefined) return out;
  for (const m of san.matchAll(SAN_DNS)) out.push(m[1]!.replace(/^"|"$/g, '').toLowerCase());
  return out;
}

/** RFC 6125 matching of one name against a certificate name (one left-most `*` label at most). */
export function nameCovered(name: string, certNames: readonly string[]): boolean {
  const n = name.toLowerCase();
  for (const c of certNames) {
    if (c === n) return true;
    if (c.startsWith('*.')) {
      const dot = n.indexOf('.');
      if (dot > 0 && n.slice(dot + 1) === c.slice(2)) return true;
    }
  }
  return false;
}

/**
 * Loads and checks every file of a `tls` block. `now` decides expiry. Problems are collected; the
 * caller decides whether to throw. Certificates with an error are left out of the result.
 */
export function loadTlsFiles(cfg: ListenerTlsConfig, baseDir: string, now = Date.now(), opts: { expiryWarnings?: boolean } = {}): { loaded: LoadedTls; problems: TlsProblem[] } {
  const problems: TlsProblem[] = [];
  const contents = new Map<string, string>();
  const err = (path: PathSegment[], message: string) => problems.push({ path, message, severity: 'error' });
  const warn = (path: PathSegment[], message: string) => problems.push({ path, message, severity: 'warning' });
  const warnDays = cfg.expiryWarningDays ?? 21;
  const certificates: LoadedCertificate[] = [];

  cfg.certificates.forEach((c, i) => {
    const certRead = read(c.cert, baseDir, contents);
    const keyRead = read(c.key, baseDir, contents);
    if ('error' in certRead) err(['certificates', i, 'cert'], certRead.error);
    if ('error' in keyRead) err(['certificates', i, 'key'], keyRead.error);
    if ('error' in certRead || 'error' in keyRead) return;
    const chain = parseChain(certRead.text);
    if (typeof chain === 'string') { err(['certificates', i, 'cert'], `${certRead.abs}: ${chain}`); return; }
    const key = parseKey(keyRead.text, c.passphrase);
    if (typeof key === 'string') { err(['certificates', i, 'key'], `${keyRead.abs}: ${key}`); return; }
    const leaf = chain[0]!;
    if (!leaf.checkPrivateKey(key)) {
      err(['certificates', i, 'key'], `${keyRead.abs} does not match the certificate in ${certRead.abs}`);
      return;
    }
    const notAfter = Date.parse(leaf.validTo);
    const notBefore = Date.parse(leaf.validFrom);
    if (notAfter <= now) { err(['certificates', i, 'cert'], `${certRead.abs}: certificate expired on ${new Date(notAfter).toISOString()}`); return; }
    if (notBefore > now) warn(['certificates', i, 'cert'], `${certRead.abs}: certificate is not valid before ${new Date(notBefore).toISOString()}`);
    else if (opts.expiryWarnings !== false && notAfter - now < warnDays * 86_400_000) {
      warn(['certificates', i, 'cert'], `${certRead.abs}: certificate expires on ${new Date(notAfter).toISOString()} (in ${Math.max(0, Math.floor((notAfter - now) / 86_400_000))} days)`);
    }
    const dnsNames = dnsNamesOf(leaf);
    const serverNames = (c.serverNames ?? dnsNames).map((n) => n.toLowerCase().replace(/\.$/, ''));
    if (c.serverNames !== undefined) {
      c.serverNames.forEach((n, j) => {
        if (!nameCovered(n, dnsNames)) warn(['certificates', i, 'serverNames', j], `${JSON.stringify(n)} is not a name in the certificate (${dnsNames.join(', ') || 'none'}): clients will reject it`);
      });
    } else if (dnsNames.length === 0 && i > 0) {
      warn(['certificates', i, 'cert'], `${certRead.abs} has no DNS names and no serverNames are configured: it is never selected`);
    }
    certificates.push({
      index: i,
      name: c.cert,
      certFile: certRead.abs,
      keyFile: keyRead.abs,
      certPem: certRead.text,
      keyPem: keyRead.text,
      passphrase: c.passphrase,
      serverNames,
      dnsNames,
      keyType: key.asymmetricKeyType ?? 'unknown',
      notBefore,
      notAfter,
      fingerprint256: leaf.fingerprint256,
    });
  });

  // Two certificates with the same key type for one name: OpenSSL would silently keep only the last.
  const seen = new Map<string, number>();
  const clashes = new Map<string, string[]>();
  for (const c of certificates) {
    for (const n of c.serverNames) {
      const k = `${n}\u0000${c.keyType}`;
      const prev = seen.get(k);
      if (prev === undefined) { seen.set(k, c.index); continue; }
      const pair = `${prev},${c.index}`;
      const names = clashes.get(pair);
      if (names === undefined) clashes.set(pair, [n]); else names.push(n);
    }
  }
  for (const [pair, names] of clashes) {
    const [a, b] = pair.split(',').map(Number) as [number, number];
    const type = certificates.find((c) => c.index === b)!.keyType.toUpperCase();
    err(['certificates', b], `certificates[${a}] and certificates[${b}] both serve ${names.map((n) => JSON.stringify(n)).join(', ')} with a ${type} key; only one certificate per key type and name`);
  }

  let clientCa: string | undefined;
  const cc = cfg.clientCertificate;
  if (cc !== undefined) {
    const r = read(cc.ca, baseDir, contents);
    if ('error' in r) err(['clientCertificate', 'ca'], r.error);
    else {
      const chain = parseChain(r.text);
      if (typeof chain === 'string') err(['clientCertificate', 'ca'], `${r.abs}: ${chain}`);
      else {
        clientCa = r.text;
        chain.forEach((x) => {
          if (Date.parse(x.validTo) <= now) warn(['clientCertificate', 'ca'], `${r.abs}: CA certificate ${x.subject.replace(/\n/g, ', ')} expired on ${new Date(Date.parse(x.validTo)).toISOString()}`);
        });
      }
    }
  }
  return { loaded: { certificates, clientCa, contents }, problems };
}
