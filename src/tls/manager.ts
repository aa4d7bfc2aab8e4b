// The TLS side of one HTTPS listener: loads and checks certificates, builds the secure contexts (one per
// distinct set of certificates serving a name, so RSA and ECDSA certificates for the same names share a
// context and OpenSSL picks by what the client supports), selects them by SNI, watches the files and
// swaps in renewed certificates for the next handshake, and publishes their expiry.
import tls from 'node:tls';
import { watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import { createHash, constants as cryptoConstants } from 'node:crypto';
import type { ListenerTlsConfig } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import { loadTlsFiles, type LoadedCertificate, type LoadedTls, type PathSegment } from './load.js';
import { CipherStringError, minVersionOf, resolveCiphers, type TlsVersionName } from './policy.js';
import { publishExpiry, withdrawExpiry } from './metrics.js';

export interface CertificateInfo {
  /** the certificate file as configured */
  name: string;
  serverNames: string[];
  notAfter: Date;
  fingerprint256: string;
  keyType: string;
}

export interface TlsManager {
  readonly listener: string;
  /** Options for tls/https/http2 secure servers: default certificates, SNICallback, versions, ciphers, ALPN, client certificates. */
  readonly serverOptions: tls.TlsOptions;
  /** whether h2 is offered by ALPN */
  readonly http2: boolean;
  readonly minVersion: TlsVersionName;
  /** the effective cipher list (TLS 1.3 suites, then TLS 1.2 suites) */
  readonly ciphers: string;
  /** certificates currently served */
  certificates(): CertificateInfo[];
  /** Servers whose default context must follow reloads (clients without SNI). */
  attach(server: tls.Server): void;
  detach(server: tls.Server): void;
  /** Re-reads the files now; true when new certificates were installed. Never throws: errors are logged. */
  reload(): boolean;
  close(): void;
}

export interface TlsManagerOptions {
  logger: Logger;
  /** directory relative file names resolve against (default: the working directory) */
  baseDir?: string;
  /** configuration path of the block, for messages (default `listeners[name=X].tls`) */
  path?: string;
  /** quiet period after a file event before reloading (default 250 ms) */
  debounceMs?: number;
  /** how often files are re-checked without an event, and expiry warnings repeated (default 1 h) */
  checkIntervalMs?: number;
}

/** A problem with a listener's TLS files or settings; the message starts with the configuration path. */
export class TlsConfigError extends Error {
  constructor(readonly path: string, readonly reason: string) {
    super(`${path}: ${reason}`);
    this.name = 'TlsConfigError';
  }
}

interface ContextSet {
  readonly loaded: LoadedTls;
  readonly exact: ReadonlyMap<string, tls.SecureContext>;
  /** `*.example.com` certificates, keyed by `example.com` */
  readonly wildcard: ReadonlyMap<string, tls.SecureContext>;
  readonly defaultContext: tls.SecureContext;
  readonly defaultOptions: tls.SecureContextOptions;
}

const DAY = 86_400_000;
// Renegotiation is a DoS lever and has no use here; compression is CRIME. (TLS 1.3 has neither.)
const SECURE_OPTIONS = (cryptoConstants.SSL_OP_NO_RENEGOTIATION ?? 0) | (cryptoConstants.SSL_OP_NO_COMPRESSION ?? 0);

function fmtPath(base: string, p: PathSegment[]): string {
  let out = base;
  for (const s of p) out += typeof s === 'number' ? `[${s}]` : `.${s}`;
  return out;
}

export function createTlsManager(listenerName: string, cfg: ListenerTlsConfig, opts: TlsManagerOptions): TlsManager {
  const logger = opts.logger;
  const baseDir = opts.baseDir ?? process.cwd();
  const path = opts.path ?? `listeners[name=${listenerName}].tls`;
  const minVersion = minVersionOf(cfg.minVersion);
  let policy;
  try {
    policy = resolveCiphers(cfg.ciphers, cfg.allowInsecureCiphers === true);
  } catch (err) {
    if (err instanceof CipherStringError) throw new TlsConfigError(`${path}.ciphers`, err.message);
    throw err;
  }
  if (policy.insecure.length > 0) logger.warn({ listener: listenerName, ciphers: policy.insecure }, `${path}.ciphers: insecure cipher suites enabled (allowInsecureCiphers)`);
  const sessionIdContext = createHash('sha256').update(`portcullis:${listenerName}`).digest('hex').slice(0, 32);
  const base: tls.SecureContextOptions = {
    minVersion,
    ciphers: policy.ciphers,
    // Every suite the policy admits is forward-secret AEAD: the client picks among them (Mozilla: "client
    // chooses"), e.g. ChaCha20 on hardware without AES instructions. OpenSSL has one switch for TLS 1.2 and 1.3.
    honorCipherOrder: false,
    secureOptions: SECURE_OPTIONS,
    sessionIdContext,
  };
  const warnDays = cfg.expiryWarningDays ?? 21;

  /** Loads everything or throws a TlsConfigError for the first error. */
  const load = (): LoadedTls => {
    const { loaded, problems } = loadTlsFiles(cfg, baseDir, Date.now(), { expiryWarnings: false });
    const first = problems.find((p) => p.severity === 'error');
    if (first !== undefined) throw new TlsConfigError(fmtPath(path, first.path), first.message);
    for (const p of problems) logger.warn({ listener: listenerName }, `${fmtPath(path, p.path)}: ${p.message}`);
    return loaded;
  };

  const contextFor = (certs: readonly LoadedCertificate[], clientCa: string | undefined): tls.SecureContextOptions => ({
    ...base,
    cert: certs.map((c) => c.certPem),
    key: certs.map((c) => (c.passphrase !== undefined ? { pem: c.keyPem, passphrase: c.passphrase } : { pem: c.keyPem })),
    ...(clientCa !== undefined ? { ca: clientCa } : {}),
  });

  const build = (loaded: LoadedTls): ContextSet => {
    const certs = loaded.certificates;
    // name → the certificates serving it; one context per distinct set.
    const byName = new Map<string, LoadedCertificate[]>();
    for (const c of certs) for (const n of c.serverNames) {
      const list = byName.get(n);
      if (list === undefined) byName.set(n, [c]); else list.push(c);
    }
    const contexts = new Map<string, tls.SecureContext>();
    const ctxOf = (group: readonly LoadedCertificate[]): { ctx: tls.SecureContext; options: tls.SecureContextOptions } => {
      const k = group.map((c) => c.index).join(',');
      const options = contextFor(group, loaded.clientCa);
      let ctx = contexts.get(k);
      if (ctx === undefined) {
        try {
          ctx = tls.createSecureContext(options);
        } catch (err) {
          throw new TlsConfigError(fmtPath(path, ['certificates', group[0]!.index]), `cannot build a TLS context: ${(err as Error).message}`);
        }
        contexts.set(k, ctx);
      }
      return { ctx, options };
    };
    const exact = new Map<string, tls.SecureContext>();
    const wildcard = new Map<string, tls.SecureContext>();
    for (const [n, group] of byName) {
      const { ctx } = ctxOf(group);
      if (n.startsWith('*.')) wildcard.set(n.slice(2), ctx); else exact.set(n, ctx);
    }
    // Default (no SNI, or an unknown name): the first certificate, with the certificates that serve its first name.
    const first = certs[0]!;
    const firstName = first.serverNames[0];
    const defGroup = firstName !== undefined ? byName.get(firstName)! : [first];
    const def = ctxOf(defGroup);
    return { loaded, exact, wildcard, defaultContext: def.ctx, defaultOptions: def.options };
  };

  let current = build(load());
  const servers = new Set<tls.Server>();
  const owner = {};
  const lastWarned = new Map<string, number>();

  const publish = () => publishExpiry(owner, listenerName, current.loaded.certificates);
  const checkExpiry = (force: boolean) => {
    const now = Date.now();
    for (const c of current.loaded.certificates) {
      const left = c.notAfter - now;
      if (left >= warnDays * DAY) continue;
      const last = lastWarned.get(c.name);
      if (!force && last !== undefined && now - last < DAY) continue;
      lastWarned.set(c.name, now);
      const fields = { listener: listenerName, certificate: c.name, not_after: new Date(c.notAfter).toISOString(), days_left: Math.floor(left / DAY) };
      if (left <= 0) logger.error(fields, `TLS certificate ${c.name} of listener ${listenerName} has expired`);
      else logger.warn(fields, `TLS certificate ${c.name} of listener ${listenerName} expires in ${Math.floor(left / DAY)} days`);
    }
  };
  publish();
  checkExpiry(true);

  const sameFiles = (a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>) => {
    if (a.size !== b.size) return false;
    for (const [k, v] of a) if (b.get(k) !== v) return false;
    return true;
  };

  let lastFailure: string | undefined;
  const reload = (): boolean => {
    let next: ContextSet;
    try {
      const { loaded, problems } = loadTlsFiles(cfg, baseDir, Date.now(), { expiryWarnings: false });
      if (sameFiles(loaded.contents, current.loaded.contents) && !problems.some((p) => p.severity === 'error')) { lastFailure = undefined; return false; }
      const first = problems.find((p) => p.severity === 'error');
      if (first !== undefined) throw new TlsConfigError(fmtPath(path, first.path), first.message);
      next = build(loaded);
    } catch (err) {
      const message = err instanceof TlsConfigError ? err.message : `${path}: ${(err as Error).message}`;
      // A half-written file is normal while a renewal is in progress: log each distinct failure once.
      if (message !== lastFailure) logger.error({ listener: listenerName, err: message }, `TLS certificate reload failed, still serving the previous certificates: ${message}`);
      lastFailure = message;
      return false;
    }
    lastFailure = undefined;
    current = next;
    // Clients without SNI get the server's own default context.
    for (const s of servers) s.setSecureContext({ ...current.defaultOptions });
    publish();
    lastWarned.clear();
    checkExpiry(true);
    logger.info({ listener: listenerName, certificates: current.loaded.certificates.map((c) => ({ name: c.name, not_after: new Date(c.notAfter).toISOString(), fingerprint256: c.fingerprint256 })) }, `TLS certificates of listener ${listenerName} reloaded`);
    return true;
  };

  // Watch the directories (editors and `mv`-style renewals replace files; Kubernetes swaps a symlinked dir).
  const watchers: FSWatcher[] = [];
  let debounce: NodeJS.Timeout | undefined;
  const debounceMs = opts.debounceMs ?? 250;
  const onEvent = () => {
    clearTimeout(debounce);
    debounce = setTimeout(reload, debounceMs);
    debounce.unref();
  };
  if (cfg.watch !== false) {
    const dirs = new Set([...current.loaded.contents.keys()].map((f) => dirname(f)));
    for (const d of dirs) {
      try {
        const w = watch(d, { persistent: false }, onEvent);
        w.on('error', (err) => logger.warn({ listener: listenerName, dir: d, err: err.message }, 'watching TLS files failed; renewals are picked up by the periodic check'));
        watchers.push(w);
      } catch (err) {
        logger.warn({ listener: listenerName, dir: d, err: (err as Error).message }, 'cannot watch TLS files; renewals are picked up by the periodic check');
      }
    }
  }
  const interval = setInterval(() => {
    if (cfg.watch !== false) reload();
    checkExpiry(false);
  }, opts.checkIntervalMs ?? 3_600_000);
  interval.unref();

  const clientCert = cfg.clientCertificate;
  const SNICallback = (servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void): void => {
    const set = current;
    let n = servername.toLowerCase();
    if (n.endsWith('.')) n = n.slice(0, -1);
    let ctx = set.exact.get(n);
    if (ctx === undefined) {
      const dot = n.indexOf('.');
      if (dot > 0) ctx = set.wildcard.get(n.slice(dot + 1));
    }
    cb(null, ctx ?? set.defaultContext);
  };

  const http2 = cfg.http2 !== false;
  const initialDefault = current.defaultOptions;
  const serverOptions: tls.TlsOptions = {
    ...current.defaultOptions,
    SNICallback,
    ALPNProtocols: http2 ? ['h2', 'http/1.1'] : ['http/1.1'],
    requestCert: clientCert !== undefined,
    rejectUnauthorized: clientCert?.mode === 'require',
  };

  return {
    listener: listenerName,
    serverOptions,
    http2,
    minVersion,
    ciphers: policy.ciphers,
    certificates: () => current.loaded.certificates.map((c) => ({ name: c.name, serverNames: [...c.serverNames], notAfter: new Date(c.notAfter), fingerprint256: c.fingerprint256, keyType: c.keyType })),
    attach(server) {
      servers.add(server);
      // The server built its default context from serverOptions; a reload since then must not be missed.
      if (current.defaultOptions !== initialDefault) server.setSecureContext({ ...current.defaultOptions });
    },
    detach(server) { servers.delete(server); },
    reload,
    close() {
      clearTimeout(debounce);
      clearInterval(interval);
      for (const w of watchers) w.close();
      watchers.length = 0;
      servers.clear();
      withdrawExpiry(owner);
    },
  };
}
