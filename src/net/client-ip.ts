// Client IP resolution behind trusted reverse proxies (security boundary).
//
// Trust model: only the socket peer is a fact. Forwarding headers are believed only when the
// peer is a trusted proxy, and only as far as the chain of trusted hops reaches: every proxy
// appends to the right, so the chain is walked right to left and the first untrusted entry is
// the client. Anything left of it was written by the client and is never even parsed.
import { canonicalIp } from './cidr.js';
import type { IpMatcher } from './cidr.js';

export interface ClientIpResolver {
  (peerIp: string, forwarded: string | undefined, xForwardedFor: string | string[] | undefined): string;
}

export interface ClientIpOptions {
  /**
   * Which forwarding header the trusted proxies maintain. `auto` (default): `Forwarded` if it has
   * any element, else `X-Forwarded-For`. Pin one when your proxies only manage the other: a proxy
   * that appends X-Forwarded-For but passes a client-sent `Forwarded` through unchanged lets the
   * client choose its IP under `auto`.
   */
  readonly header?: 'auto' | 'forwarded' | 'x-forwarded-for';
}

/**
 * At most this many list elements (hops, empty elements included) are examined per request.
 * Bounds the work on hostile headers; no sane deployment chains 32 trusted proxies. Reaching the
 * cap stops the walk like an unparsable entry does.
 */
export const MAX_FORWARDED_HOPS = 32;

/**
 * Returned when the socket peer itself is not a valid IP (e.g. a Unix socket, or a destroyed
 * socket with `remoteAddress === undefined`). Headers are not consulted in that case.
 */
export const UNKNOWN_CLIENT_IP = '0.0.0.0';

/** Walk state: `last` is the answer so far: the last trusted hop reached (initially the peer), or the client once found. */
interface Walk {
  last: string;
  hops: number;
}

/** Outcome of examining one list element. */
const CONTINUE = 0;
const DONE = 1;
type Step = typeof CONTINUE | typeof DONE;

function isOws(c: number): boolean {
  return c === 32 || c === 9;
}

/** Valid `port` (1-5 digits, ≤ 65535) in s[start, end). */
function isPort(s: string, start: number, end: number): boolean {
  const len = end - start;
  if (len < 1 || len > 5) return false;
  let v = 0;
  for (let i = start; i < end; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    v = v * 10 + d;
  }
  return v <= 65535;
}

/** RFC 7239 obfport: "_" 1*(ALPHA / DIGIT / "." / "_" / "-"). */
function isObfPort(s: string, start: number, end: number): boolean {
  if (end - start < 2 || s.charCodeAt(start) !== 95) return false;
  for (let i = start + 1; i < end; i++) {
    const c = s.charCodeAt(i);
    const ok = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 46 || c === 95 || c === 45;
    if (!ok) return false;
  }
  return true;
}

/**
 * `[v6]` with optional `:port` in s[start, end) (s[start] is "["); canonical IP or null.
 * Obfuscated ports are allowed only in Forwarded.
 */
function bracketed(s: string, start: number, end: number, obfPortOk: boolean): string | null {
  const close = s.indexOf(']', start);
  if (close === -1 || close >= end) return null;
  if (close + 1 !== end) {
    if (s.charCodeAt(close + 1) !== 58 /* : */) return null;
    if (!isPort(s, close + 2, end) && !(obfPortOk && isObfPort(s, close + 2, end))) return null;
  }
  const inner = s.slice(start + 1, close);
  // Brackets are for IPv6 only; `[1.2.3.4]` is malformed.
  if (inner.indexOf(':') === -1) return null;
  return canonicalIp(inner);
}

/** An X-Forwarded-For entry (already trimmed, non-empty): IPv4, IPv4:port, IPv6, [IPv6], [IPv6]:port. */
function parseXffEntry(s: string, start: number, end: number): string | null {
  if (s.charCodeAt(start) === 91 /* [ */) return bracketed(s, start, end, false);
  const colon = s.indexOf(':', start);
  if (colon === -1 || colon >= end) return canonicalIp(start === 0 && end === s.length ? s : s.slice(start, end));
  const second = s.indexOf(':', colon + 1);
  if (second === -1 || second >= end) {
    // Exactly one colon: IPv4 with a port (some load balancers add it). The host part has no
    // colon, so canonicalIp can only accept it as IPv4.
    if (!isPort(s, colon + 1, end)) return null;
    return canonicalIp(s.slice(start, colon));
  }
  return canonicalIp(s.slice(start, end)); // unbracketed IPv6, the usual XFF form
}

/** Applies one parsed hop to the walk. */
function step(ip: string | null, trusted: IpMatcher, w: Walk): Step {
  if (ip === null) return DONE; // unparsable/unknown/obfuscated: keep the last trusted hop
  w.last = ip;
  return trusted.contains(ip) ? CONTINUE : DONE;
}

/** Walks one X-Forwarded-For header line right to left. */
function walkXffLine(s: string, trusted: IpMatcher, w: Walk): Step {
  let end = s.length;
  for (;;) {
    if (w.hops >= MAX_FORWARDED_HOPS) return DONE;
    w.hops++;
    const comma = end === 0 ? -1 : s.lastIndexOf(',', end - 1);
    let a = comma + 1;
    let b = end;
    while (a < b && isOws(s.charCodeAt(a))) a++;
    while (b > a && isOws(s.charCodeAt(b - 1))) b--;
    // Empty list elements ("1.2.3.4, ") are ignored, as RFC 9110 §5.6.1 asks of list recipients.
    if (a !== b && step(parseXffEntry(s, a, b), trusted, w) === DONE) return DONE;
    if (comma === -1) return CONTINUE;
    end = comma;
  }
}

function isTchar(c: number): boolean {
  // RFC 9110 token: ALPHA / DIGIT / "!#$%&'*+-.^_`|~"
  if ((c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122)) return true;
  return c === 33 || (c >= 35 && c <= 39) || c === 42 || c === 43 || c === 45 || c === 46 || c === 94 || c === 95 || c === 96 || c === 124 || c === 126;
}

/** Result of the `for=` node: canonical IP, or null to stop the walk. */
function parseForNode(s: string, start: number, end: number): string | null {
  if (start >= end) return null;
  const c0 = s.charCodeAt(start);
  if (c0 === 91 /* [ */) return bracketed(s, start, end, true);
  // "unknown" and obfuscated "_x" identifiers, and anything else non-IPv4, fail below and stop.
  const colon = s.indexOf(':', start);
  if (colon === -1 || colon >= end) return canonicalIp(s.slice(start, end));
  const second = s.indexOf(':', colon + 1);
  // RFC 7239 requires brackets around IPv6, so two colons is malformed.
  if (second !== -1 && second < end) return null;
  if (!isPort(s, colon + 1, end) && !isObfPort(s, colon + 1, end)) return null;
  return canonicalIp(s.slice(start, colon));
}

/**
 * One forwarded-element s[start, end), non-empty: `pair *( ";" pair )`. Returns the `for` node's
 * canonical IP, or null when the element is malformed, lacks `for`, or has it twice.
 */
function parseForwardedElement(s: string, start: number, end: number): string | null {
  let pos = start;
  let forStart = -1;
  let forEnd = -1;
  while (pos < end) {
    while (pos < end && isOws(s.charCodeAt(pos))) pos++;
    if (pos < end && s.charCodeAt(pos) === 59 /* ; */) {
      pos++; // empty pair
      continue;
    }
    const nameStart = pos;
    while (pos < end && isTchar(s.charCodeAt(pos))) pos++;
    const nameLen = pos - nameStart;
    if (nameLen === 0 || pos >= end || s.charCodeAt(pos) !== 61 /* = */) return null;
    pos++;
    let vStart: number;
    let vEnd: number;
    if (pos < end && s.charCodeAt(pos) === 34 /* " */) {
      vStart = pos + 1;
      pos = vStart;
      let escaped = false;
      while (pos < end && s.charCodeAt(pos) !== 34) {
        if (s.charCodeAt(pos) === 92 /* \ */) {
          escaped = true;
          pos++;
        }
        pos++;
      }
      if (pos >= end) return null; // unterminated
      vEnd = escaped ? -1 : pos; // a valid node never needs escapes
      pos++;
    } else {
      // Lenient token: RFC 7239 wants `for="1.2.3.4:80"` quoted, but the node parser is strict anyway.
      vStart = pos;
      while (pos < end) {
        const c = s.charCodeAt(pos);
        if (c === 59 || c === 34 || isOws(c)) break;
        pos++;
      }
      vEnd = pos;
      if (vEnd === vStart) return null;
    }
    while (pos < end && isOws(s.charCodeAt(pos))) pos++;
    if (pos < end) {
      if (s.charCodeAt(pos) !== 59) return null;
      pos++;
    }
    if (
      nameLen === 3 &&
      (s.charCodeAt(nameStart) | 32) === 102 /* f */ &&
      (s.charCodeAt(nameStart + 1) | 32) === 111 /* o */ &&
      (s.charCodeAt(nameStart + 2) | 32) === 114 /* r */
    ) {
      if (forStart !== -1 || vEnd === -1) return null; // duplicate `for`, or escaped value
      forStart = vStart;
      forEnd = vEnd;
    }
  }
  if (forStart === -1) return null; // hop did not identify itself: same as for=unknown
  return parseForNode(s, forStart, forEnd);
}

/**
 * Walks a Forwarded header right to left. Element boundaries are found scanning right to left
 * (tracking quoted strings), so a client-sent prefix — even an unterminated quote — cannot change
 * how the proxy-appended elements to its right are split. Returns null if there were no elements.
 */
function walkForwarded(s: string, trusted: IpMatcher, w: Walk): Step | null {
  let end = s.length;
  let sawElement = false;
  while (end > 0) {
    if (w.hops >= MAX_FORWARDED_HOPS) return DONE;
    w.hops++;
    let i = end - 1;
    let inQuote = false;
    for (; i >= 0; i--) {
      const c = s.charCodeAt(i);
      if (c === 34 /* " */) {
        if (!inQuote) {
          inQuote = true;
        } else {
          let bs = 0;
          while (i - 1 - bs >= 0 && s.charCodeAt(i - 1 - bs) === 92) bs++;
          if ((bs & 1) === 0) inQuote = false; // odd count: escaped quote inside the string
        }
      } else if (c === 44 /* , */ && !inQuote) {
        break;
      }
    }
    if (inQuote) return DONE; // unbalanced quotes: malformed
    let a = i + 1;
    let b = end;
    end = i;
    while (a < b && isOws(s.charCodeAt(a))) a++;
    while (b > a && isOws(s.charCodeAt(b - 1))) b--;
    if (a === b) continue; // empty list element: ignored
    sawElement = true;
    if (step(parseForwardedElement(s, a, b), trusted, w) === DONE) return DONE;
  }
  return sawElement ? CONTINUE : null;
}

function walkXff(xff: string | string[], trusted: IpMatcher, w: Walk): void {
  if (typeof xff === 'string') {
    walkXffLine(xff, trusted, w);
    return;
  }
  // Multiple header lines: later lines are further right in the chain.
  for (let i = xff.length - 1; i >= 0; i--) {
    const line = xff[i];
    if (typeof line === 'string' && walkXffLine(line, trusted, w) === DONE) return;
  }
}

/**
 * Compiles a resolver for the client IP. The result is always a canonical IP (see `canonicalIp`):
 * the socket peer unless it is a trusted proxy, else the first untrusted hop from the right of the
 * forwarding chain; if every hop is trusted, the leftmost; if an entry is unparsable (or `unknown`,
 * obfuscated, missing `for`) or `MAX_FORWARDED_HOPS` is reached, the last trusted hop reached.
 * Empty list elements are ignored. Never throws.
 */
export function compileClientIpResolver(trusted: IpMatcher, options: ClientIpOptions = {}): ClientIpResolver {
  const mode = options.header ?? 'auto';
  // Config-time check: a typo must not silently fall back to `auto`.
  if (mode !== 'auto' && mode !== 'forwarded' && mode !== 'x-forwarded-for') {
    throw new TypeError(`invalid client IP header mode: ${String(mode)}`);
  }
  const peerOnly = (peerIp: string): string => canonicalIp(peerIp) ?? UNKNOWN_CLIENT_IP;
  if (trusted.empty) return peerOnly;
  const useForwarded = mode !== 'x-forwarded-for';
  const useXff = mode !== 'forwarded';

  return (peerIp, forwarded, xForwardedFor) => {
    const peer = canonicalIp(peerIp);
    if (peer === null) return UNKNOWN_CLIENT_IP;
    if (!trusted.contains(peer)) return peer;
    const w: Walk = { last: peer, hops: 0 };
    if (useForwarded && typeof forwarded === 'string') {
      const r = walkForwarded(forwarded, trusted, w);
      if (r !== null || !useXff) return w.last;
    }
    if (useXff && xForwardedFor !== undefined) walkXff(xForwardedFor, trusted, w);
    return w.last;
  };
}
