// The TLS protocol and cipher policy of HTTPS listeners.
//
// TLS 1.3 only by default. TLS 1.2 only when a listener asks for it (`minVersion: TLSv1.2`), and then only
// forward-secret AEAD suites: ECDHE key exchange, RSA or ECDSA authentication, AES-GCM or ChaCha20-Poly1305
// (no CBC, no static-RSA key exchange, no SHA-1 MACs, no DHE, no CCM-8, no anonymous or NULL suites).
//
// A configured `ciphers` string is evaluated here, with OpenSSL's syntax and aliases, into the explicit list
// of suites it means; that list (never the raw string) is what OpenSSL gets. So the policy check sees
// exactly what will be negotiated, and `ECDHE+AESGCM`, `HIGH:!aNULL` or a list of names all work.
import { CIPHER_TABLE } from './cipher-table.js';

export type TlsVersionName = 'TLSv1.2' | 'TLSv1.3';

interface Suite { name: string; kx: string; au: string; enc: string; bits: number; mac: string }

const SUITES: readonly Suite[] = CIPHER_TABLE.trim().split('\n').map((line) => {
  const [name, kx, au, encRaw, mac] = line.trim().split(/\s+/) as [string, string, string, string, string];
  const m = /^(.*?)(?:\((\d+)\))?$/.exec(encRaw)!;
  return { name, kx, au, enc: m[1]!, bits: Number(m[2] ?? 0), mac };
});
const BY_NAME = new Map(SUITES.map((s) => [s.name.toUpperCase(), s]));

/** TLS 1.3 suites: all AEAD with ephemeral key exchange. CCM_8 (64-bit tag) is not offered. */
const TLS13_ALLOWED = new Set(['TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256', 'TLS_AES_128_GCM_SHA256', 'TLS_AES_128_CCM_SHA256']);
const TLS13_KNOWN = new Set([...TLS13_ALLOWED, 'TLS_AES_128_CCM_8_SHA256']);
/** Mozilla's modern order. The client's preference decides among them (manager.ts: honorCipherOrder off). */
export const DEFAULT_TLS13_SUITES: readonly string[] = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'];

/** The TLS 1.2 suites used when none are configured (Mozilla "intermediate", TLS 1.2 part). */
export const DEFAULT_TLS12_SUITES: readonly string[] = [
  'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305',
];

/** Forward secret (ECDHE), authenticated (RSA/ECDSA), AEAD (AES-GCM, ChaCha20-Poly1305). */
export function isModernSuite(name: string): boolean {
  if (name.startsWith('TLS_')) return TLS13_ALLOWED.has(name);
  const s = BY_NAME.get(name.toUpperCase());
  return s !== undefined && s.kx === 'ECDH' && (s.au === 'RSA' || s.au === 'ECDSA') && (s.enc === 'AESGCM' || s.enc === 'CHACHA20/POLY1305') && s.mac === 'AEAD';
}

// OpenSSL cipher-string aliases (ciphers(1)), as predicates over the table.
const ALIASES: Record<string, (s: Suite) => boolean> = {
  ALL: (s) => s.enc !== 'None',
  COMPLEMENTOFALL: (s) => s.enc === 'None',
  DEFAULT: (s) => s.enc !== 'None' && s.au !== 'None',
  COMPLEMENTOFDEFAULT: (s) => s.au === 'None' && s.enc !== 'None',
  HIGH: (s) => s.enc !== 'None' && s.bits >= 128,
  MEDIUM: () => false,
  LOW: () => false,
  EXPORT: () => false,
  EXP: () => false,
  RC4: () => false,
  DES: () => false,
  '3DES': () => false,
  MD5: () => false,
  eNULL: (s) => s.enc === 'None',
  NULL: (s) => s.enc === 'None',
  aNULL: (s) => s.au === 'None',
  kRSA: (s) => s.kx === 'RSA',
  RSA: (s) => s.kx === 'RSA',
  aRSA: (s) => s.au === 'RSA',
  kDHE: (s) => s.kx === 'DH',
  kEDH: (s) => s.kx === 'DH',
  DH: (s) => s.kx === 'DH' || s.kx === 'DHEPSK',
  DHE: (s) => s.kx === 'DH' && s.au !== 'None',
  EDH: (s) => s.kx === 'DH' && s.au !== 'None',
  ADH: (s) => s.kx === 'DH' && s.au === 'None',
  kECDHE: (s) => s.kx === 'ECDH',
  kEECDH: (s) => s.kx === 'ECDH',
  ECDH: (s) => s.kx === 'ECDH' || s.kx === 'ECDHEPSK',
  ECDHE: (s) => s.kx === 'ECDH' && s.au !== 'None',
  EECDH: (s) => s.kx === 'ECDH' && s.au !== 'None',
  AECDH: (s) => s.kx === 'ECDH' && s.au === 'None',
  aECDSA: (s) => s.au === 'ECDSA',
  ECDSA: (s) => s.au === 'ECDSA',
  aDSS: (s) => s.au === 'DSS',
  DSS: (s) => s.au === 'DSS',
  PSK: (s) => s.kx.includes('PSK'),
  kPSK: (s) => s.kx === 'PSK',
  kECDHEPSK: (s) => s.kx === 'ECDHEPSK',
  kDHEPSK: (s) => s.kx === 'DHEPSK',
  kRSAPSK: (s) => s.kx === 'RSAPSK',
  aPSK: (s) => s.au === 'PSK',
  SRP: (s) => s.kx === 'SRP',
  kSRP: (s) => s.kx === 'SRP',
  aSRP: (s) => s.au === 'SRP',
  AES: (s) => s.enc.startsWith('AES'),
  AES128: (s) => s.enc.startsWith('AES') && s.bits === 128,
  AES256: (s) => s.enc.startsWith('AES') && s.bits === 256,
  AESGCM: (s) => s.enc === 'AESGCM',
  AESCCM: (s) => s.enc === 'AESCCM' || s.enc === 'AESCCM8',
  AESCCM8: (s) => s.enc === 'AESCCM8',
  CHACHA20: (s) => s.enc === 'CHACHA20/POLY1305',
  CAMELLIA: (s) => s.enc === 'Camellia',
  CAMELLIA128: (s) => s.enc === 'Camellia' && s.bits === 128,
  CAMELLIA256: (s) => s.enc === 'Camellia' && s.bits === 256,
  ARIA: (s) => s.enc === 'ARIAGCM',
  ARIA128: (s) => s.enc === 'ARIAGCM' && s.bits === 128,
  ARIA256: (s) => s.enc === 'ARIAGCM' && s.bits === 256,
  ARIAGCM: (s) => s.enc === 'ARIAGCM',
  SHA1: (s) => s.mac === 'SHA1',
  SHA: (s) => s.mac === 'SHA1',
  // (the MAC: AEAD suites named ...-SHA256 are not in these, as in OpenSSL)
  SHA256: (s) => s.mac === 'SHA256',
  SHA384: (s) => s.mac === 'SHA384',
  'TLSv1.2': (s) => s.mac === 'AEAD' || s.mac === 'SHA256' || s.mac === 'SHA384',
  TLSv1: (s) => s.mac === 'SHA1',
  SSLv3: (s) => s.mac === 'SHA1',
};
const ALIASES_CI = new Map(Object.entries(ALIASES).map(([k, v]) => [k.toUpperCase(), v] as const));

export interface CipherEvaluation {
  /** TLS 1.2 suites, in order */
  tls12: string[];
  /** TLS 1.3 suites named in the string (empty = the defaults) */
  tls13: string[];
}

export class CipherStringError extends Error {}

function matcher(token: string): (s: Suite) => boolean {
  const parts = token.split('+');
  const preds = parts.map((p) => {
    const exact = BY_NAME.get(p.toUpperCase());
    if (exact !== undefined && parts.length === 1) return (s: Suite) => s === exact;
    const a = ALIASES[p] ?? ALIASES_CI.get(p.toUpperCase());
    if (a === undefined) throw new CipherStringError(`unknown cipher suite or keyword ${JSON.stringify(p)}`);
    return a;
  });
  return (s) => preds.every((f) => f(s));
}

/** Evaluates an OpenSSL cipher string into the explicit suites it selects (OpenSSL's rules: add, -, !, +). */
export function evaluateCipherString(str: string): CipherEvaluation {
  const list: Suite[] = [];
  const banned = new Set<Suite>();
  const tls13: string[] = [];
  for (const raw of str.split(/[:, ]+/)) {
    const tok = raw.trim();
    if (tok === '') continue;
    if (tok.startsWith('@')) {
      // @STRENGTH reorders, @SECLEVEL=n is about key sizes: neither can add a suite.
      if (/^@(STRENGTH|SECLEVEL=\d)$/i.test(tok)) continue;
      throw new CipherStringError(`unknown keyword ${JSON.stringify(tok)}`);
    }
    if (/^TLS_/i.test(tok)) {
      const up = tok.toUpperCase();
      if (!TLS13_KNOWN.has(up)) throw new CipherStringError(`unknown TLS 1.3 suite ${JSON.stringify(tok)}`);
      if (!tls13.includes(up)) tls13.push(up);
      continue;
    }
    const op = tok[0];
    if (op === '!' || op === '-' || op === '+') {
      const f = matcher(tok.slice(1));
      const hit = list.filter(f);
      if (op === '!') for (const s of SUITES) if (f(s)) banned.add(s);
      for (const s of hit) list.splice(list.indexOf(s), 1);
      if (op === '+') list.push(...hit);
      continue;
    }
    const f = matcher(tok);
    for (const s of SUITES) if (f(s) && !banned.has(s) && !list.includes(s)) list.push(s);
  }
  return { tls12: list.map((s) => s.name), tls13 };
}

export interface CipherPolicyResult {
  /** the `ciphers` value for OpenSSL: TLS 1.3 suites, then TLS 1.2 suites */
  ciphers: string;
  tls12: string[];
  tls13: string[];
  /** suites outside the policy (only non-empty when insecure ciphers are allowed) */
  insecure: string[];
}

/**
 * The effective cipher configuration of a listener. Throws CipherStringError (message without a path)
 * when the string is invalid, selects nothing, or selects a suite outside the policy without
 * allowInsecureCiphers.
 */
export function resolveCiphers(configured: string | undefined, allowInsecure: boolean): CipherPolicyResult {
  if (configured === undefined || configured.trim() === '') {
    return { ciphers: [...DEFAULT_TLS13_SUITES, ...DEFAULT_TLS12_SUITES].join(':'), tls12: [...DEFAULT_TLS12_SUITES], tls13: [...DEFAULT_TLS13_SUITES], insecure: [] };
  }
  const ev = evaluateCipherString(configured);
  if (ev.tls12.length === 0 && ev.tls13.length === 0) throw new CipherStringError(`${JSON.stringify(configured)} selects no cipher suite`);
  const tls13 = ev.tls13.length > 0 ? ev.tls13 : [...DEFAULT_TLS13_SUITES];
  const insecure = [...ev.tls12, ...ev.tls13].filter((n) => !isModernSuite(n));
  if (insecure.length > 0 && !allowInsecure) {
    const shown = insecure.slice(0, 6).join(', ') + (insecure.length > 6 ? `, and ${insecure.length - 6} more` : '');
    throw new CipherStringError(`selects cipher suites without forward secrecy or AEAD: ${shown}. Only ECDHE with AES-GCM or ChaCha20-Poly1305 is accepted (e.g. "ECDHE+AESGCM:ECDHE+CHACHA20"), unless allowInsecureCiphers is set`);
  }
  // No TLS 1.2 suite at all: OpenSSL needs an empty list, which Node reads as "TLS 1.3 only".
  return { ciphers: [...tls13, ...ev.tls12].join(':'), tls12: ev.tls12, tls13, insecure };
}

/** `minVersion` of a listener (TLS 1.3 unless configured). */
export function minVersionOf(v: TlsVersionName | undefined): TlsVersionName {
  return v ?? 'TLSv1.3';
}
