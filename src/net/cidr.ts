// IP address canonicalization and CIDR matching.
//
// Semantics: an IPv4 address and its IPv4-mapped IPv6 form (`::ffff:a.b.c.d`) are the same
// address. Mapped inputs are converted to IPv4 before matching, and IPv6 ranges that cover
// part of `::ffff:0:0/96` (including `::/0`) are compiled into the equivalent IPv4 ranges,
// so matching does not depend on which form the socket or a header used.
//
// IPv4 text is accepted only as strict dotted-quad decimal (no `010.1`, `0x7f.1`, `127.1`):
// those legacy forms are ambiguous across parsers and a classic ACL-bypass vector.
import ipaddr from 'ipaddr.js';

export interface IpMatcher {
  /** True if `ip` (any textual IPv4/IPv6 form, zone allowed) is in the set. Never throws; invalid input → false. */
  contains(ip: string): boolean;
  /** True when the list had no entries; lets callers skip work entirely. */
  readonly empty: boolean;
}

export type CidrListResult =
  | { ok: true; matcher: IpMatcher }
  | { ok: false; errors: { index: number; reason: string }[] };

/** Longest textual IPv6 with embedded IPv4 is 45 chars; leave room for a zone id. Bounds regex work in ipaddr.js. */
const MAX_IP_TEXT = 64;

const ALIASES: ReadonlyMap<string, readonly string[]> = new Map([
  ['loopback', ['127.0.0.0/8', '::1/128']],
  ['private', ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7']],
  ['linklocal', ['169.254.0.0/16', 'fe80::/10']],
]);

/**
 * Strict dotted-quad parse of s[start, end): returns the address as an unsigned 32-bit number, or -1.
 * Hand-rolled because it is the hot path for almost every request; rejects leading zeros.
 */
function parseV4(s: string, start: number, end: number): number {
  let acc = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c === 46 /* . */) {
      if (digits === 0 || dots === 3) return -1;
      acc = acc * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
      continue;
    }
    const d = c - 48;
    if (d < 0 || d > 9) return -1;
    if (digits !== 0 && octet === 0) return -1; // leading zero
    octet = octet * 10 + d;
    if (octet > 255) return -1;
    digits++;
  }
  if (dots !== 3 || digits === 0) return -1;
  return acc * 256 + octet;
}

function v4ToString(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/**
 * Parses IPv6 text (zone id allowed) with ipaddr.js. An embedded dotted-quad tail is validated
 * strictly here and rewritten to hex groups first, because ipaddr.js accepts hex/octal octets there
 * and turns deprecated `::a.b.c.d` into a *mapped* address.
 */
function parseV6(s: string): ipaddr.IPv6 | null {
  if (s.length > MAX_IP_TEXT || s.indexOf(':') === -1) return null;
  let text = s;
  if (s.indexOf('.') !== -1) {
    const pct = s.indexOf('%');
    const end = pct === -1 ? s.length : pct;
    const lc = s.lastIndexOf(':', end - 1);
    const v4 = parseV4(s, lc + 1, end);
    if (v4 < 0) return null;
    text = `${s.slice(0, lc + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}${s.slice(end)}`;
  }
  try {
    return ipaddr.IPv6.parse(text);
  } catch {
    return null;
  }
}

function isMapped(p: readonly number[]): boolean {
  return p[0] === 0 && p[1] === 0 && p[2] === 0 && p[3] === 0 && p[4] === 0 && p[5] === 0xffff;
}

/** IPv4 value of the last two 16-bit groups. */
function tailV4(p: readonly number[]): number {
  return ((p[6] ?? 0) * 65536 + (p[7] ?? 0));
}

/**
 * Canonical text of an IP address, or null if `ip` is not one: IPv4 as strict dotted quad,
 * IPv4-mapped IPv6 as plain IPv4, other IPv6 RFC 5952 (compressed, lowercase), zone id dropped
 * (it is interface-local, not part of the address, and in headers it would be attacker text).
 */
export function canonicalIp(ip: string): string | null {
  if (typeof ip !== 'string') return null;
  const n = ip.length;
  // Already-canonical IPv4 (the common case) is returned as-is: no allocation.
  if (parseV4(ip, 0, n) >= 0) return ip;
  // What Node reports for IPv4 peers on a dual-stack listener.
  if (n > 7 && ip.startsWith('::ffff:') && parseV4(ip, 7, n) >= 0) return ip.slice(7);
  const a = parseV6(ip);
  if (a === null) return null;
  if (isMapped(a.parts)) return v4ToString(tailV4(a.parts));
  return (a.zoneId === undefined ? a : new ipaddr.IPv6(a.parts)).toRFC5952String();
}

interface Compiled {
  /** Pairs (network, mask) as signed 32-bit ints. */
  v4: number[];
  /** Groups of 16: eight 16-bit network parts, then eight mask parts. */
  v6: number[];
}

function v4Mask(prefix: number): number {
  return prefix === 0 ? 0 : (-1 << (32 - prefix)) | 0;
}

function v6MaskPart(prefix: number, k: number): number {
  const bits = Math.min(16, Math.max(0, prefix - 16 * k));
  return bits === 0 ? 0 : (0xffff << (16 - bits)) & 0xffff;
}

const PREFIX_RE = /^(?:0|[1-9][0-9]{0,2})$/;

/** Compiles one non-alias entry into `out`; returns an error reason or null. */
function compileEntry(entry: string, out: Compiled): string | null {
  const slash = entry.indexOf('/');
  const addrText = slash === -1 ? entry : entry.slice(0, slash);
  let prefix = -1;
  if (slash !== -1) {
    const p = entry.slice(slash + 1);
    if (!PREFIX_RE.test(p)) return `invalid prefix length "${p}"`;
    prefix = Number(p);
  }

  const v4 = parseV4(addrText, 0, addrText.length);
  if (v4 >= 0) {
    if (prefix === -1) prefix = 32;
    if (prefix > 32) return `IPv4 prefix length must be 0-32, got ${prefix}`;
    return addV4(v4, prefix, out);
  }

  if (addrText.indexOf(':') === -1) {
    return 'not an IP address or CIDR (IPv4 must be dotted-quad decimal without leading zeros)';
  }
  const a = parseV6(addrText);
  if (a === null) return 'not a valid IPv6 address';
  if (a.zoneId !== undefined) return 'zone index (%...) is not allowed';
  if (prefix === -1) prefix = 128;
  if (prefix > 128) return `IPv6 prefix length must be 0-128, got ${prefix}`;
  const p = a.parts;
  for (let k = 0; k < 8; k++) {
    if (((p[k] ?? 0) & ~v6MaskPart(prefix, k) & 0xffff) !== 0) {
      const net = new ipaddr.IPv6(p.map((x, i) => x & v6MaskPart(prefix, i)));
      return `host bits set; did you mean ${net.toRFC5952String()}/${prefix}?`;
    }
  }
  if (prefix >= 96 && isMapped(p)) {
    // Entirely inside ::ffff:0:0/96: the same addresses as an IPv4 range.
    return addV4(tailV4(p), prefix - 96, out);
  }
  for (let k = 0; k < 8; k++) out.v6.push(p[k] ?? 0);
  for (let k = 0; k < 8; k++) out.v6.push(v6MaskPart(prefix, k));
  if (prefix < 96) {
    // Covers the whole mapped block (e.g. ::/0), hence every IPv4 address.
    let covers = true;
    const mapped = [0, 0, 0, 0, 0, 0xffff];
    for (let k = 0; k < 6; k++) {
      if (((mapped[k] ?? 0) & v6MaskPart(prefix, k)) !== (p[k] ?? 0)) covers = false;
    }
    if (covers) addV4(0, 0, out);
  }
  return null;
}

function addV4(addr: number, prefix: number, out: Compiled): string | null {
  const mask = v4Mask(prefix);
  if ((addr & ~mask) !== 0) {
    return `host bits set; did you mean ${v4ToString((addr & mask) >>> 0)}/${prefix}?`;
  }
  out.v4.push(addr | 0, mask);
  return null;
}

/**
 * Compiles a list of addresses, CIDRs and aliases (`loopback`, `private`, `linklocal`) into a matcher.
 * All invalid entries are reported (index into `list`), not just the first. Entries are trimmed;
 * aliases are case-insensitive. CIDRs with host bits set (`10.0.0.1/8`) are rejected as likely typos.
 */
export function parseCidrList(list: readonly string[]): CidrListResult {
  const out: Compiled = { v4: [], v6: [] };
  const errors: { index: number; reason: string }[] = [];
  for (let i = 0; i < list.length; i++) {
    const raw: unknown = list[i];
    if (typeof raw !== 'string') {
      errors.push({ index: i, reason: 'entry must be a string' });
      continue;
    }
    const entry = raw.trim();
    if (entry === '') {
      errors.push({ index: i, reason: 'empty entry' });
      continue;
    }
    const alias = ALIASES.get(entry.toLowerCase());
    if (alias !== undefined) {
      for (const e of alias) compileEntry(e, out);
      continue;
    }
    const reason = compileEntry(entry, out);
    if (reason !== null) errors.push({ index: i, reason: `"${entry}": ${reason}` });
  }
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, matcher: buildMatcher(out, list.length === 0) };
}

function buildMatcher(c: Compiled, empty: boolean): IpMatcher {
  const v4 = Int32Array.from(c.v4);
  const v6 = Int32Array.from(c.v6);
  const n4 = v4.length;
  const n6 = v6.length;

  const match4 = (ip: number): boolean => {
    for (let i = 0; i < n4; i += 2) {
      if ((ip & (v4[i + 1] as number)) === v4[i]) return true;
    }
    return false;
  };

  const contains = (ip: string): boolean => {
    if (typeof ip !== 'string') return false;
    const n = ip.length;
    let a = parseV4(ip, 0, n);
    if (a >= 0) return match4(a);
    if (n > 7 && ip.startsWith('::ffff:')) {
      a = parseV4(ip, 7, n);
      if (a >= 0) return match4(a);
    }
    const p6 = parseV6(ip);
    if (p6 === null) return false;
    const p = p6.parts;
    if (isMapped(p)) return match4(tailV4(p));
    outer: for (let i = 0; i < n6; i += 16) {
      for (let k = 0; k < 8; k++) {
        if (((p[k] ?? 0) & (v6[i + 8 + k] as number)) !== v6[i + k]) continue outer;
      }
      return true;
    }
    return false;
  };

  return { contains, empty };
}
