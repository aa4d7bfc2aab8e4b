// TLS to https targets: verification (on by default), SPKI pinning and client certificates (mTLS).
// Everything that can fail (reading files, parsing PEM, decrypting the key) fails here, once, when an
// upstream is compiled; the connectors built from the result only handshake.
//
// Pinning is on the leaf certificate's key only. With verification on, trusting a CA is what `tls.ca` is
// for; with verification off (`insecureSkipVerify`), the rest of the chain the peer sends is unverified
// and a pin on it would prove nothing. A leaf pin always does: the handshake proves the peer holds the key.
import tls, { type ConnectionOptions, type PeerCertificate, type TLSSocket } from 'node:tls';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createHash, X509Certificate } from 'node:crypto';
import { buildConnector } from 'undici';
import type { UpstreamTlsConfig } from '../config/schema.js';
import type { UpstreamEvent } from './types.js';
import { parseKey } from '../tls/load.js';

/** Error code of a handshake whose certificate key matched none of the pins. */
export const TLS_PIN_MISMATCH = 'PORTCULLIS_TLS_PIN_MISMATCH';

/** Default lowest protocol version offered to upstreams. */
export const UPSTREAM_TLS_MIN_VERSION = 'TLSv1.2';

/**
 * Certificate verification failures as Node reports them (`err.code`): OpenSSL's X509_V_ERR_* names
 * plus Node's own hostname check.
 */
const VERIFY_ERROR_CODES: ReadonlySet<string> = new Set([
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_CRL', 'UNABLE_TO_DECRYPT_CERT_SIGNATURE', 'UNABLE_TO_DECRYPT_CRL_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY', 'CERT_SIGNATURE_FAILURE', 'CRL_SIGNATURE_FAILURE', 'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED', 'CRL_NOT_YET_VALID', 'CRL_HAS_EXPIRED', 'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD', 'ERROR_IN_CRL_LAST_UPDATE_FIELD', 'ERROR_IN_CRL_NEXT_UPDATE_FIELD',
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'CERT_CHAIN_TOO_LONG', 'CERT_REVOKED', 'INVALID_CA', 'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE', 'CERT_UNTRUSTED', 'CERT_REJECTED', 'HOSTNAME_MISMATCH', 'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** The upstream's certificate did not verify (chain, validity dates, name). */
export function isTlsVerifyErrorCode(code: string): boolean {
  return VERIFY_ERROR_CODES.has(code);
}

/**
 * Any failure to establish (or keep) a TLS session with an upstream: verification, pin, and OpenSSL
 * errors such as a protocol-version alert, a refused client certificate, or plain HTTP on an https target.
 */
export function isTlsErrorCode(code: string): boolean {
  return VERIFY_ERROR_CODES.has(code) || code === TLS_PIN_MISMATCH || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_');
}

/** base64 SHA-256 of the certificate's SubjectPublicKeyInfo (DER): the format of `tls.pins`. */
export function spkiPin(cert: X509Certificate | string | Buffer): string {
  const x = cert instanceof X509Certificate ? cert : new X509Certificate(cert);
  return createHash('sha256').update(x.publicKey.export({ type: 'spki', format: 'der' })).digest('base64');
}

/** A configuration problem found while compiling `upstreams.<name>.tls`; `path` names the field. */
export class UpstreamTlsConfigError extends Error {
  constructor(readonly path: string, readonly reason: string) {
    super(`${path}: ${reason}`);
    this.name = 'UpstreamTlsConfigError';
  }
}

export class TlsPinMismatchError extends Error {
  readonly code = TLS_PIN_MISMATCH;
  /** pin of the key the peer presented (operators compare it with the configured ones) */
  constructor(readonly observed: string) {
    super(`upstream certificate key (pin ${observed}) matches none of the configured pins`);
    this.name = 'TlsPinMismatchError';
  }
}

export interface UpstreamTlsOptions {
  /** directory relative file names resolve against (default: the working directory) */
  baseDir?: string;
  /** security events (pin mismatch, verification failure), one per failed handshake */
  onEvent?: (e: UpstreamEvent) => void;
}

/** Compiled `tls` settings of one upstream; `connector` makes the undici `connect` function of one target. */
export interface UpstreamTls {
  readonly verify: boolean;
  readonly pins: ReadonlySet<string>;
  /** `origin` names the target in events; `timeoutMs` is the connect (TCP + handshake) timeout, 0 = none */
  connector(origin: string, timeoutMs: number): buildConnector.connector;
}

export function compileUpstreamTls(upstream: string, cfg: UpstreamTlsConfig | undefined, opts: UpstreamTlsOptions = {}): UpstreamTls {
  const c = cfg ?? {};
  const base = `upstreams.${upstream}.tls`;
  const baseDir = opts.baseDir ?? process.cwd();
  const fail = (field: string, reason: string): never => { throw new UpstreamTlsConfigError(`${base}.${field}`, reason); };
  const read = (field: 'ca' | 'cert' | 'key', what: string): { file: string; pem: Buffer } | undefined => {
    const rel = c[field];
    if (rel === undefined) return undefined;
    const file = resolve(baseDir, rel);
    try {
      return { file, pem: readFileSync(file) };
    } catch (e) {
      return fail(field, `cannot read ${what} ${JSON.stringify(file)}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  };

  const verify = c.insecureSkipVerify !== true;
  const pins: ReadonlySet<string> = new Set(c.pins ?? []);
  const minVersion = c.minVersion ?? UPSTREAM_TLS_MIN_VERSION;
  const connectOptions: ConnectionOptions = { minVersion, rejectUnauthorized: verify };
  if (c.servername !== undefined) connectOptions.servername = c.servername;

  // Without verification a CA bundle would be read and then ignored; still checked so a typo shows.
  const ca = read('ca', 'CA bundle');
  if (ca) {
    const blocks = ca.pem.toString('latin1').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    if (blocks.length === 0) fail('ca', `${JSON.stringify(ca.file)} contains no PEM certificate`);
    blocks.forEach((b, i) => {
      try { new X509Certificate(b); } catch (e) { fail('ca', `${JSON.stringify(ca.file)}: certificate #${i + 1} cannot be parsed (${(e as Error).message})`); }
    });
    connectOptions.ca = ca.pem;
  }

  const cert = read('cert', 'client certificate');
  const key = read('key', 'client key');
  if ((cert === undefined) !== (key === undefined)) fail(cert ? 'key' : 'cert', 'a client certificate needs both "cert" and "key"');
  if (cert && key) {
    try {
      new X509Certificate(cert.pem);
    } catch (e) {
      fail('cert', `${JSON.stringify(cert.file)} is not a PEM certificate (${(e as Error).message})`);
    }
    // Decrypts the key now rather than at the first request. OpenSSL's own message for a wrong passphrase
    // varies (often "bad decrypt", sometimes a decoder error), so the key is judged by what it is.
    const parsed = parseKey(key.pem.toString(), c.passphrase);
    if (typeof parsed === 'string') fail('key', `${JSON.stringify(key.file)}: ${parsed}`);
    try {
      // and checks that it belongs to the certificate
      tls.createSecureContext({ cert: cert.pem, key: key.pem, ...(c.passphrase !== undefined ? { passphrase: c.passphrase } : {}) });
    } catch (e) {
      const msg = (e as Error).message;
      const reason = /bad decrypt|bad password|passphrase/i.test(msg) ? 'cannot decrypt the key (wrong or missing passphrase)'
        : /mismatch/i.test(msg) ? `the key does not belong to the certificate ${JSON.stringify(cert.file)}`
        : msg;
      fail('key', `${JSON.stringify(key.file)}: ${reason}`);
    }
    connectOptions.cert = cert.pem;
    connectOptions.key = key.pem;
    if (c.passphrase !== undefined) connectOptions.passphrase = c.passphrase;
  }

  const matchPin = (x: X509Certificate): TlsPinMismatchError | undefined => {
    const observed = spkiPin(x);
    return pins.has(observed) ? undefined : new TlsPinMismatchError(observed);
  };
  const pinned = pins.size > 0;

  if (verify && pinned) {
    // Pins are checked where Node checks the host name: a failure destroys the socket before it is
    // marked verified, so its session is never cached for resumption (resumed sessions, which skip this
    // check, therefore all come from pinned handshakes).
    connectOptions.checkServerIdentity = (host: string, peer: PeerCertificate): Error | undefined => {
      const hostErr = tls.checkServerIdentity(host, peer);
      if (hostErr) return hostErr;
      let x: X509Certificate;
      try { x = new X509Certificate(peer.raw); } catch { return new TlsPinMismatchError('(unreadable certificate)'); }
      return matchPin(x);
    };
  }

  const emit = (e: UpstreamEvent): void => {
    if (!opts.onEvent) return;
    try { opts.onEvent(e); } catch { /* a failing logger must not break connecting */ }
  };

  return {
    verify,
    pins,
    connector(origin, timeoutMs) {
      const base = buildConnector({
        ...connectOptions,
        timeout: timeoutMs,
        // Without verification Node neither calls checkServerIdentity nor rejects on its result, and a
        // rejected socket's session may still be cached: check the pin after the handshake and never resume.
        ...(!verify && pinned ? { maxCachedSessions: 0 } : {}),
      });
      return (options, callback) => {
        base(options, (err, socket) => {
          if (err) {
            const code = (err as { code?: unknown }).code;
            if (code === TLS_PIN_MISMATCH) emit({ type: 'tls-pin-mismatch', upstream, target: origin, observed: (err as TlsPinMismatchError).observed });
            else if (typeof code === 'string' && VERIFY_ERROR_CODES.has(code)) emit({ type: 'tls-verify-failed', upstream, target: origin, code });
            callback(err, null);
            return;
          }
          if (!verify && pinned && options.protocol === 'https:') {
            const s = socket as TLSSocket;
            const x = s.isSessionReused() ? undefined : s.getPeerX509Certificate();
            const pinErr = x === undefined ? new TlsPinMismatchError('(no certificate)') : matchPin(x);
            if (pinErr) {
              s.destroy();
              emit({ type: 'tls-pin-mismatch', upstream, target: origin, observed: pinErr.observed });
              callback(pinErr, null);
              return;
            }
          }
          callback(null, socket!);
        });
      };
    },
  };
}
