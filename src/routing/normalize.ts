// Request-target normalization: the single security boundary that turns the raw `req.url` into the
// one decoded, canonical path that routing and every later stage see. The upstream is sent
// `encodePathForUpstream(path)`, never the raw target, so gateway and backend cannot disagree about
// what was asked for (the root cause of most path-confusion / ACL-bypass bugs).
//
// Policy, in short: anything ambiguous is rejected rather than guessed at.
//  - control bytes (raw or %-encoded), raw non-ASCII, raw space, `#`, malformed %-escapes: reject
//  - %2F (encoded '/'): reject unless allowEncodedSlash, in which case it IS a separator (decoded to '/')
//  - %5C (encoded '\'): always reject; raw '\': reject unless allowBackslash, in which case it is a
//    separator (as WHATWG URL parsing treats it), so no backend can see one '\' we did not route on
//  - invalid/overlong UTF-8 and surrogates after decoding: reject
//  - a decoded '%' followed by two hex digits (from %25xx): reject, see DOUBLE_ENCODING below
//  - dot segments are resolved after decoding; '..' never climbs above '/'; '//' collapses to '/'
//  - a dot segment carrying a ';' parameter ('..;x', '.;x') is rejected (Tomcat/Jetty strip
//    parameters before resolving dots, so '/a/..;/admin' reaches '/admin' there); any other ';'
//    (raw or %3B) is rejected too unless allowSemicolon ('/admin;x' is '/admin' to those servers)
//  - a segment of only dots and spaces other than '.'/'..' ('...', '..%20', '.. .') is rejected:
//    Windows (and software imitating it) strips trailing dots and spaces, so it is '..' there
//  - a decoded segment with a character that folds into '.', '/' or '\' under NFKC or a Windows
//    best-fit code page (U+FF0E, U+FF0F, U+2215, U+3002, ...) is rejected, see FOLDS_TO_PATH_SYNTAX;
//    other non-ASCII text (é, 日本語, emoji) is fine
// The query string is returned raw (without '?'); it is only checked for bytes that must never be
// forwarded (controls, space, non-ASCII, '#').

export interface NormalizeOptions {
  /** Accept %2F and treat it as a path separator (it is decoded to '/'). Default false. */
  allowEncodedSlash?: boolean;
  /** Accept raw '\' and treat it as a path separator. Default false. (%5C is always rejected.) */
  allowBackslash?: boolean;
  /**
   * Accept ';' (raw or %3B) in the path. Default false: servlet containers (Tomcat, Jetty, Spring) strip
   * ';params' from segments, so '/admin;x' is '/admin' to them while the gateway routed '/admin;x' —
   * an exact-path deny rule would be bypassed. A dot segment with parameters is rejected regardless.
   */
  allowSemicolon?: boolean;
}

export type NormalizeResult =
  | { ok: true; path: string; query: string }
  | { ok: false; reason: string };

// Character classes for the raw target (ASCII only; anything >= 0x80 is rejected).
const C_FAST = 1; // [A-Za-z0-9/._~-]: may be returned untouched
const C_BAD = 2; // never acceptable raw anywhere in the target: controls, DEL, space, '#'
const CLASS = new Uint8Array(128);
for (let c = 0; c < 0x20; c++) CLASS[c] = C_BAD;
CLASS[0x7f] = C_BAD;
CLASS[0x20] = C_BAD;
CLASS[0x23] = C_BAD; // '#'
for (const ch of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/._~-') CLASS[ch.charCodeAt(0)] = C_FAST;

// Bytes kept literally by encodePathForUpstream: unreserved, sub-delims, ':', '@' and the '/' separator.
const KEEP = new Uint8Array(128);
for (const ch of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/") KEEP[ch.charCodeAt(0)] = 1;
const HEX = '0123456789ABCDEF';

const fail = (reason: string): NormalizeResult => Object.freeze({ ok: false, reason });
// Pre-built (frozen, shared) failures: rejecting hostile input should not cost allocations.
const F_ASTERISK = fail('asterisk-form not supported');
const F_SEMICOLON = fail('semicolon in path (path parameters are ambiguous)');
const F_FORM = fail('request target must be origin-form or absolute-form');
const F_AUTHORITY = fail('invalid authority in absolute-form');
const F_FRAGMENT = fail('fragment in request target');
const F_CONTROL = fail('control character in request target');
const F_SPACE = fail('space in request target');
const F_NON_ASCII = fail('non-ASCII byte in request target');
const F_PERCENT = fail('invalid percent-encoding');
const F_ENC_SLASH = fail('encoded slash in path');
const F_ENC_BACKSLASH = fail('encoded backslash in path');
const F_BACKSLASH = fail('backslash in path');
const F_DOUBLE = fail('double percent-encoding in path');
const F_UTF8 = fail('invalid UTF-8 in path');
const F_DOT_PARAM = fail('path parameter on dot segment');
const F_DOT_LIKE = fail('dot segment with trailing dots or spaces');
const F_LOOKALIKE = fail('character that folds into path syntax (., /, \\) in path');

// FOLDS_TO_PATH_SYNTAX: code points >= 0x80 that some layer behind the gateway may turn into '.', '/'
// or '\\': a backend (or its framework, file system, or a WAF) that applies Unicode compatibility
// normalization (NFKC/NFKD) sees '\uFF0E\uFF0E' as '..'; Windows "best-fit" conversion to an ANSI code
// page maps '\u2215' to '/' and, in cp932/cp949, '\u00A5'/'\u20A9' to 0x5C ('\\'). The gateway routed on
// the unfolded text, so either would be a traversal or ACL bypass. The NFKC part is computed from the
// running engine's Unicode tables (all of them, ~0.1 s once per process); the best-fit part, which
// no standard API exposes, is listed by hand.
const BEST_FIT: readonly number[] = [
  0x00a5, // YEN SIGN -> 0x5C in cp932 (Shift-JIS), where 0x5C is the path separator
  0x20a9, // WON SIGN -> 0x5C in cp949
  0x2044, // FRACTION SLASH -> '/'
  0x2215, // DIVISION SLASH -> '/'
  0x2216, // SET MINUS -> '\\'
  0x29f5, // REVERSE SOLIDUS OPERATOR -> '\\'
  0x29f8, // BIG SOLIDUS -> '/'
  0x29f9, // BIG REVERSE SOLIDUS -> '\\'
  0x2571, // BOX DRAWINGS LIGHT DIAGONAL UPPER RIGHT TO LOWER LEFT -> '/' (OEM code pages)
  0x2572, // BOX DRAWINGS LIGHT DIAGONAL UPPER LEFT TO LOWER RIGHT -> '\\'
  0x3002, // IDEOGRAPHIC FULL STOP -> '.' (also a label separator in IDNA)
  0xff61, // HALFWIDTH IDEOGRAPHIC FULL STOP -> '.' (NFKC only takes it to U+3002)
  0x2024, 0x2025, 0xfe52, 0xff0e, 0xff0f, 0xff3c, 0xfe68, // also caught by NFKC; listed for the record
];
const FOLDS_TO_PATH_SYNTAX: ReadonlySet<number> = (() => {
  const set = new Set<number>(BEST_FIT);
  for (let c = 0x80; c <= 0x10ffff; c++) {
    if (c === 0xd800) { c = 0xdfff; continue; }
    const f = String.fromCodePoint(c).normalize('NFKC');
    if (f.includes('.') || f.includes('/') || f.includes('\\')) set.add(c);
  }
  return set;
})();

/** True if `cp` is a non-ASCII code point that NFKC or a Windows best-fit mapping turns into '.', '/' or '\\'. */
export function foldsToPathSyntax(cp: number): boolean {
  return FOLDS_TO_PATH_SYNTAX.has(cp);
}

// '...', '. ', '..  ', '.. .': only dots and whitespace, starting with a dot, and not exactly '.'/'..'.
const DOT_LIKE = /^\.[.\s]+$/;

const ABSOLUTE_FORM = /^https?:\/\//i;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

// Reused decode buffer: normalization is synchronous, so one scratch area per process is safe.
let scratch = new Uint8Array(2048);

function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 0x20;
  if (l >= 97 && l <= 102) return l - 87;
  return -1;
}

/** Checks the raw query for bytes that must never be forwarded; returns a failure or null. */
function checkQuery(target: string, from: number): NormalizeResult | null {
  for (let i = from; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c >= 0x80) return F_NON_ASCII;
    if (CLASS[c] === C_BAD) return c === 0x23 ? F_FRAGMENT : c === 0x20 ? F_SPACE : F_CONTROL;
  }
  return null;
}

export function normalizeRequestTarget(target: string, opts?: NormalizeOptions): NormalizeResult {
  let start = 0;
  if (target.charCodeAt(0) !== 47 /* / */) {
    if (target === '*') return F_ASTERISK;
    const m = ABSOLUTE_FORM.exec(target);
    if (m === null) return F_FORM;
    // absolute-form: skip scheme and authority; the caller owns Host/authority handling.
    const auth = m[0].length;
    let i = auth;
    for (; i < target.length; i++) {
      const c = target.charCodeAt(i);
      if (c === 47 || c === 63 || c === 35) break;
      if (c >= 0x80 || CLASS[c] === C_BAD || c === 92 /* \ */ || c === 64 /* @ */) return F_AUTHORITY;
    }
    if (i === auth) return F_AUTHORITY;
    if (target.charCodeAt(i) !== 47) {
      // Empty path in absolute-form means '/'.
      const rest = target.slice(i);
      return normalizeRequestTarget('/' + rest, opts);
    }
    start = i;
  }

  // Fast scan: only [A-Za-z0-9/._~-], no '//', no '.'/'..' segments -> path is the target as is.
  const len = target.length;
  let i = start;
  let segStart = start + 1;
  let fast = true;
  for (; i < len; i++) {
    const c = target.charCodeAt(i);
    if (c === 63 /* ? */) break;
    if (c >= 0x80 || CLASS[c] !== C_FAST) { fast = false; break; }
    if (c === 47) {
      if (i > start && target.charCodeAt(i - 1) === 47) { fast = false; break; }
      if (isDotSegment(target, segStart, i)) { fast = false; break; }
      segStart = i + 1;
    }
  }
  if (fast) {
    // i is at '?' or len; the final segment has not been dot-checked yet.
    if (isDotSegment(target, segStart, i)) fast = false;
  }
  if (fast) {
    if (i === len) return { ok: true, path: start === 0 ? target : target.slice(start), query: '' };
    const bad = checkQuery(target, i + 1);
    if (bad !== null) return bad;
    return { ok: true, path: target.slice(start, i), query: target.slice(i + 1) };
  }
  const r = slowPath(target, start, opts);
  if (r.ok && opts?.allowSemicolon !== true && r.path.includes(';')) return F_SEMICOLON;
  return r;
}

/** '.', '..' or any other all-dots segment ('...' is refused by the slow path). */
function isDotSegment(s: string, from: number, to: number): boolean {
  if (to === from) return false;
  for (let k = from; k < to; k++) if (s.charCodeAt(k) !== 46) return false;
  return true;
}

function slowPath(target: string, start: number, opts: NormalizeOptions | undefined): NormalizeResult {
  const allowEncodedSlash = opts?.allowEncodedSlash === true;
  const allowBackslash = opts?.allowBackslash === true;
  const len = target.length;
  let end = target.indexOf('?', start);
  if (end === -1) end = len;

  const need = end - start;
  let buf = scratch;
  if (buf.length < need) {
    // Grow the shared buffer for ordinary sizes; one-off huge targets get a private buffer.
    buf = new Uint8Array(need);
    if (need <= 65536) scratch = buf;
  }

  let n = 0;
  let nonAscii = false;
  for (let i = start; i < end; i++) {
    const c = target.charCodeAt(i);
    if (c >= 0x80) return F_NON_ASCII; // Node hands raw bytes > 0x7F over as latin1 chars
    if (c === 37 /* % */) {
      if (i + 2 >= end) return F_PERCENT;
      const h = hexVal(target.charCodeAt(i + 1));
      const l = hexVal(target.charCodeAt(i + 2));
      if (h < 0 || l < 0) return F_PERCENT;
      const b = (h << 4) | l;
      if (b < 0x20 || b === 0x7f) return F_CONTROL;
      if (b === 0x2f && !allowEncodedSlash) return F_ENC_SLASH;
      if (b === 0x5c) return F_ENC_BACKSLASH;
      if (b >= 0x80) nonAscii = true;
      buf[n++] = b;
      i += 2;
      continue;
    }
    if (c === 92 /* \ */) {
      if (!allowBackslash) return F_BACKSLASH;
      buf[n++] = 47;
      continue;
    }
    if (CLASS[c] === C_BAD) return c === 0x23 ? F_FRAGMENT : c === 0x20 ? F_SPACE : F_CONTROL;
    buf[n++] = c;
  }

  // DOUBLE_ENCODING: after our decode a '%' may only come from %25. If it is followed by two hex
  // digits, the client sent e.g. %252e; a backend (or a framework layer) that decodes once more
  // would see '.', '/' or a control byte that we never checked or routed on.
  for (let k = 0; k + 2 < n; k++) {
    if (buf[k] === 0x25 && hexVal(buf[k + 1]!) >= 0 && hexVal(buf[k + 2]!) >= 0) return F_DOUBLE;
  }

  let decoded: string;
  if (nonAscii) {
    try {
      decoded = utf8.decode(buf.subarray(0, n)); // fatal: overlong, surrogates, stray bytes throw
    } catch {
      return F_UTF8;
    }
  } else {
    decoded = latin1(buf, n);
  }

  const path = resolveDots(decoded, nonAscii);
  if (typeof path !== 'string') return path;
  if (end === len) return { ok: true, path, query: '' };
  const bad = checkQuery(target, end + 1);
  if (bad !== null) return bad;
  return { ok: true, path, query: target.slice(end + 1) };
}

function latin1(buf: Uint8Array, n: number): string {
  // All bytes are ASCII here; build in chunks to stay clear of argument-count limits.
  let s = '';
  for (let k = 0; k < n; k += 8192) {
    s += String.fromCharCode.apply(null, buf.subarray(k, Math.min(n, k + 8192)) as unknown as number[]);
  }
  return s;
}

/** True if the segment (with some char >= 0x80) has a character that folds into '.', '/' or '\\'. */
function hasLookalike(s: string): boolean {
  for (let k = 0; k < s.length; k++) {
    const c = s.charCodeAt(k);
    if (c < 0x80) continue;
    const cp = s.codePointAt(k)!;
    if (FOLDS_TO_PATH_SYNTAX.has(cp)) return true;
    if (cp > 0xffff) k++;
  }
  return false;
}

function isNonAscii(s: string): boolean {
  for (let k = 0; k < s.length; k++) if (s.charCodeAt(k) >= 0x80) return true;
  return false;
}

/** RFC 3986 5.2.4 on a decoded path starting with '/'; also merges empty segments. */
function resolveDots(decoded: string, nonAscii: boolean): string | NormalizeResult {
  const parts = decoded.split('/');
  const out: string[] = [];
  for (let k = 1; k < parts.length; k++) {
    const s = parts[k]!;
    if (s === '' || s === '.') continue;
    if (s === '..') { out.pop(); continue; }
    if (s.charCodeAt(0) === 46) {
      // '.;x' / '..;x': servlet containers drop ';params' and then resolve the dot segment.
      if (s.charCodeAt(1) === 59 || (s.charCodeAt(1) === 46 && s.charCodeAt(2) === 59)) return F_DOT_PARAM;
      if (DOT_LIKE.test(s)) return F_DOT_LIKE;
    }
    // Only segments with non-ASCII text pay for the look-alike check (and the NFKC of the
    // whitespace test: '..' + U+3000 IDEOGRAPHIC SPACE is '.. ' once folded).
    if (nonAscii && isNonAscii(s)) {
      if (hasLookalike(s)) return F_LOOKALIKE;
      if (DOT_LIKE.test(s.normalize('NFKC'))) return F_DOT_LIKE;
    }
    out.push(s);
  }
  const last = parts[parts.length - 1];
  const trailing = last === '' || last === '.' || last === '..';
  if (out.length === 0) return '/';
  return '/' + out.join('/') + (trailing ? '/' : '');
}

/**
 * Canonical re-encoding of a normalized (decoded) path for the upstream request line: every byte
 * outside unreserved / sub-delims / ':' / '@' is percent-encoded as UTF-8 (upper-case hex), '%'
 * included; '/' stays the separator. normalizeRequestTarget(encodePathForUpstream(p)).path === p
 * for every path p that normalizeRequestTarget produced.
 */
export function encodePathForUpstream(path: string): string {
  let i = 0;
  const len = path.length;
  for (; i < len; i++) {
    const c = path.charCodeAt(i);
    if (c >= 0x80 || KEEP[c] !== 1) break;
  }
  if (i === len) return path;

  let out = path.slice(0, i);
  for (; i < len; i++) {
    let c = path.charCodeAt(i);
    if (c < 0x80) {
      out += KEEP[c] === 1 ? path[i] : pct(c);
      continue;
    }
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < len) {
      const d = path.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      }
    }
    if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd; // lone surrogate: cannot be UTF-8; never from normalize
    if (c < 0x800) {
      out += pct(0xc0 | (c >> 6)) + pct(0x80 | (c & 0x3f));
    } else if (c < 0x10000) {
      out += pct(0xe0 | (c >> 12)) + pct(0x80 | ((c >> 6) & 0x3f)) + pct(0x80 | (c & 0x3f));
    } else {
      out += pct(0xf0 | (c >> 18)) + pct(0x80 | ((c >> 12) & 0x3f)) + pct(0x80 | ((c >> 6) & 0x3f)) + pct(0x80 | (c & 0x3f));
    }
  }
  return out;
}

function pct(b: number): string {
  return '%' + HEX[b >> 4]! + HEX[b & 15]!;
}
