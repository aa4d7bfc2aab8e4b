// The verified client certificate of a TLS connection, read once per connection and cached on the socket.
// Works for HTTP/1.1 (req.socket is the TLSSocket) and HTTP/2 (the compat request's socket is a proxy
// that forwards property reads and writes to the session's TLSSocket, so the cache lands there too).
//
// Nothing here re-verifies anything: the TLS handshake verified the chain against the listener's client
// CA (`tls.clientCertificate.ca`) and recorded the outcome in `authorized` / `authorizationError`.
import type { IncomingMessage } from 'node:http';
import ipaddr from 'ipaddr.js';
import type { Identity } from '../../pipeline/context.js';

/** What one connection proved about its client. Shared, frozen; never allocated per request. */
export interface PeerCertificate {
  /** a certificate was presented and the handshake verified it against the listener's client CA */
  readonly verified: boolean;
  /** why it is not verified: 'no client certificate', 'not a TLS connection', or the TLS error code (CERT_HAS_EXPIRED, ...) */
  readonly reason: string;
  /** subject CN (undefined when absent or multi-valued) */
  readonly subject: string | undefined;
  /** SANs as 'DNS:name', 'URI:uri', 'email:addr', 'IP:addr' (DNS lower case, IP canonical) */
  readonly sans: readonly string[];
  /** SHA-256 fingerprint, upper-case colon form ('' without a certificate) */
  readonly fingerprint: string;
  /** the identity a verified certificate establishes (kind 'mtls', id = CN, else the fingerprint) */
  readonly identity: Identity | undefined;
  /** forward-header value: `subject=…;san=…,…;fingerprint=…`, each value escaped (see escapeValue) */
  readonly headerValue: string;
}

const kPeerCert = Symbol('portcullis.peerCertificate');

interface RawPeerCert {
  readonly raw?: Buffer;
  readonly subject?: Readonly<Record<string, string | string[] | undefined>> | null;
  readonly subjectaltname?: string;
  readonly fingerprint256?: string;
}
interface CertSocket {
  [kPeerCert]?: PeerCertificate;
  readonly encrypted?: boolean;
  readonly authorized?: boolean;
  readonly authorizationError?: Error | string | null;
  getPeerCertificate?(detailed?: boolean): RawPeerCert | null;
}

function unverified(reason: string): PeerCertificate {
  return Object.freeze({ verified: false, reason, subject: undefined, sans: Object.freeze([]), fingerprint: '', identity: undefined, headerValue: '' });
}
const NOT_TLS = unverified('not a TLS connection');
const NO_CERT = unverified('no client certificate');

/** The connection's client certificate, computed on the first request of the connection and cached. */
export function peerCertificate(req: IncomingMessage): PeerCertificate {
  const s = req.socket as unknown as CertSocket | null;
  if (s === null || s === undefined) return NOT_TLS;
  const cached = s[kPeerCert];
  if (cached !== undefined) return cached;
  const pc = readPeerCertificate(s);
  s[kPeerCert] = pc;
  return pc;
}

export function readPeerCertificate(s: CertSocket): PeerCertificate {
  if (s.encrypted !== true || typeof s.getPeerCertificate !== 'function') return NOT_TLS;
  const cert = s.getPeerCertificate(false);
  // Node returns {} (or null once the socket is gone) when the client sent no certificate.
  if (cert === null || cert === undefined || cert.raw === undefined) return NO_CERT;
  const cnRaw = cert.subject?.CN;
  const subject = typeof cnRaw === 'string' && cnRaw !== '' ? cnRaw : undefined;
  const sans = Object.freeze(parseSubjectAltName(cert.subjectaltname));
  const fingerprint = cert.fingerprint256 ?? '';
  if (s.authorized !== true) {
    const e = s.authorizationError;
    const reason = e === null || e === undefined ? 'certificate not verified' : typeof e === 'string' ? e : ((e as { code?: string }).code ?? e.message);
    return Object.freeze({ verified: false, reason, subject, sans, fingerprint, identity: undefined, headerValue: '' });
  }
  const identity: Identity = Object.freeze({
    kind: 'mtls',
    id: subject ?? fingerprint,
    claims: Object.freeze({ subject, sans, fingerprint }),
  });
  const headerValue = `subject=${escapeValue(subject ?? '')};san=${sans.map(escapeValue).join(',')};fingerprint=${fingerprint}`;
  return Object.freeze({ verified: true, reason: '', subject, sans, fingerprint, identity, headerValue });
}

const JSON_STRING = /^"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/;

/**
 * Splits Node's `subjectaltname` ("DNS:a, URI:\"x, y\", IP Address:1.2.3.4": values with delimiters are
 * JSON-quoted, as Node's own checkServerIdentity reads them) into normalized 'TYPE:value' entries.
 * Types other than DNS, URI, email and IP are left out; an unparseable string yields what parsed so far.
 */
export function parseSubjectAltName(alt: string | undefined): string[] {
  const out: string[] = [];
  if (alt === undefined || alt === '') return out;
  const tokens: string[] = [];
  let cur = '';
  let off = 0;
  while (off < alt.length) {
    const sep = alt.indexOf(', ', off);
    const quote = alt.indexOf('"', off);
    if (quote !== -1 && (sep === -1 || quote < sep)) {
      cur += alt.slice(off, quote);
      const m = JSON_STRING.exec(alt.slice(quote));
      if (m === null) return out; // malformed: trust nothing after this point
      cur += JSON.parse(m[0]) as string;
      off = quote + m[0].length;
    } else if (sep !== -1) {
      cur += alt.slice(off, sep);
      tokens.push(cur);
      cur = '';
      off = sep + 2;
    } else {
      cur += alt.slice(off);
      off = alt.length;
    }
  }
  tokens.push(cur);
  for (const t of tokens) {
    const n = normalizeSan(t);
    if (n !== undefined) out.push(n);
  }
  return out;
}

/** 'DNS:Foo.Example' → 'DNS:foo.example', 'IP Address:0:0:0:0:0:0:0:1' → 'IP:::1'; other types → undefined. */
function normalizeSan(t: string): string | undefined {
  const colon = t.indexOf(':');
  if (colon <= 0) return undefined;
  const type = t.slice(0, colon);
  const value = t.slice(colon + 1);
  switch (type) {
    case 'DNS': return `DNS:${value.toLowerCase()}`;
    case 'URI': return `URI:${value}`;
    case 'email': return `email:${value}`;
    case 'IP Address':
    case 'IP': {
      const ip = canonicalIp(value);
      return ip === undefined ? undefined : `IP:${ip}`;
    }
    default: return undefined;
  }
}

function canonicalIp(v: string): string | undefined {
  if (!ipaddr.isValid(v)) return undefined;
  return ipaddr.parse(v).toString();
}

/**
 * Allowlist keys for one configured `sans` entry. With a type prefix (DNS:, URI:, email:, IP:) the entry
 * matches only that type; without one it matches a DNS, URI, email or IP SAN with that value.
 */
export function sanAllowKeys(entry: string): string[] {
  const m = /^(DNS|URI|email|IP):(.*)$/i.exec(entry);
  if (m !== null) {
    const t = m[1]!.toLowerCase();
    const type = t === 'dns' ? 'DNS' : t === 'uri' ? 'URI' : t === 'email' ? 'email' : 'IP';
    const n = normalizeSan(`${type}:${m[2]!}`);
    return n === undefined ? [] : [n];
  }
  const keys = [`DNS:${entry.toLowerCase()}`, `URI:${entry}`, `email:${entry}`];
  const ip = canonicalIp(entry);
  if (ip !== undefined) keys.push(`IP:${ip}`);
  return keys;
}

/** 'ab:cd…' or 'ABCD…' → 'AB:CD:…' (Node's fingerprint256 form); undefined unless exactly 32 bytes of hex. */
export function normalizeFingerprint(fp: string): string | undefined {
  const hex = fp.replace(/:/g, '').toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) return undefined;
  return hex.match(/../g)!.join(':');
}

// Left as is in forwarded values: RFC 3986 unreserved and the URI/SAN punctuation that cannot be
// mistaken for this header's own delimiters (';', ',', '=') or for quoting and escapes ('"', '\', '%').
const KEEP = /^[A-Za-z0-9\-._~:/@!$'()*+[\]]*$/;

/** Percent-encodes (UTF-8) every character outside KEEP; decodeURIComponent restores the value. */
export function escapeValue(v: string): string {
  if (KEEP.test(v)) return v;
  let out = '';
  for (const ch of v) {
    if (KEEP.test(ch)) out += ch;
    else for (const b of Buffer.from(ch, 'utf8')) out += `%${b < 16 ? '0' : ''}${b.toString(16).toUpperCase()}`;
  }
  return out;
}
