// Route matching. Routes are compiled once into per-listener tables; `find` walks them in a fixed
// precedence order and returns the first route whose every condition holds.
//
// PRECEDENCE (users rely on this; keep it stable):
//  1. Host specificity: exact host with port (`api.example.com:8443`) > exact host > wildcard host
//     (`*.example.com`; longer suffix first, with-port before without at equal length) > no `hosts`.
//  2. Path: exact `path` > `path` with :params (more literal segments first, then more segments)
//     > `path` ending in `/*` or `pathPrefix` (longer literal prefix first, i.e. the text before the
//     first :param; then more literal segments, then more segments) > no path condition.
//  3. Routes with `methods` > routes without.
//  4. More `headers` conditions > fewer.
//  5. Config order.
// The first candidate in that order whose host, path, method and header conditions all hold wins:
// a more specific route that fails e.g. its method check simply falls through to the next one.
// No candidate = null (the caller answers 404).
//
// Matching rules:
//  - `path` is matched against the normalized, decoded path from normalizeRequestTarget. Patterns
//    must themselves be in that form (no %-escapes, dot segments, '//'), or compileRouter throws:
//    such a route could never match and is surely a mistake.
//  - `:name` matches exactly one non-empty segment. `/x/*` matches `/x`, `/x/` and `/x/...`;
//    `wildcard` is the text after `/x/` ('' if none). `*` is only allowed as the final segment.
//  - `pathPrefix: /api` matches `/api`, `/api/`, `/api/...` but not `/apix`. A prefix ending in '/'
//    (`/api/`) requires the slash. Prefixes are literal (no :params, no `*`).
//  - Trailing slashes are significant for exact and :param paths (`/a` does not match `/a/`).
//  - `caseInsensitive` folds ASCII letters only; non-ASCII characters must match exactly (avoids
//    Unicode case-mapping surprises such as KELVIN SIGN lower-casing to 'k').
//  - Hosts are case-insensitive; a trailing dot on the request host is ignored. A pattern without
//    a port matches the host on any port; a pattern with a port only matches a Host header carrying
//    that exact port. `*.example.com` matches any depth of subdomain (`a.example.com`,
//    `a.b.example.com`) but NOT the apex `example.com` (list it separately). An empty, malformed or
//    unrecognised Host only matches routes without `hosts`.
//  - `methods` compare exactly (HEAD is not implied by GET).
//  - `headers`: `present` / `equals` / `oneOf`, names case-insensitive, values case-sensitive. A
//    header that arrived several times as an array only satisfies `equals`/`oneOf` if it has exactly
//    one value (a repeated header is ambiguous; backends may read either copy).
import type { RouteMatch } from '../config/schema.js';
import { encodePathForUpstream, normalizeRequestTarget } from './normalize.js';

export interface RouteEntry<T> {
  id: string;
  match: RouteMatch;
  value: T;
  /** Only match on these listener names (absent = every listener). */
  listeners?: readonly string[];
}

export interface RouteHit<T> {
  value: T;
  /** :param values (decoded). A shared frozen empty object when the route has no params. */
  params: Record<string, string>;
  /** Text matched by a trailing `/*` ('' when nothing follows); undefined for other routes. */
  wildcard: string | undefined;
  /**
   * Leading characters of the path consumed by the route's literal pattern, always on a segment
   * boundary: `/api` for pathPrefix `/api` or path `/api/*` (=4), the whole path for exact and
   * :param paths, 0 for routes without a path condition. `path.slice(prefixLength) || '/'` strips it.
   */
  prefixLength: number;
}

export type RequestHeaders = Readonly<Record<string, string | string[] | undefined>>;

export interface Router<T> {
  find(listener: string, host: string, method: string, path: string, headers: RequestHeaders): RouteHit<T> | null;
}

const EMPTY_PARAMS: Record<string, string> = Object.freeze(Object.create(null) as Record<string, string>);

// Path kinds, in precedence tiers.
const K_EXACT = 0;
const K_PARAM = 1;
const K_WILD = 2; // path ending in /*
const K_PREFIX = 3; // pathPrefix
const K_ANY = 4;

const H_PRESENT = 0;
const H_ABSENT = 1;
const H_EQUALS = 2;
const H_ONE_OF = 3;

interface HeaderCond {
  name: string;
  kind: number;
  values: readonly string[];
}

/** A pattern segment: a literal, or a param (index into the param list). */
interface Seg {
  lit: string;
  param: number; // -1 = literal
}

interface Cand<T> {
  id: string;
  value: T;
  rank: number;
  kind: number;
  ci: boolean;
  /** exact: the path; literal wildcard / prefix: fixed part without trailing '/' ('' for '/*'). */
  lit: string;
  /** pathPrefix ending in '/': something must follow `lit`. */
  needSlash: boolean;
  /** :param patterns (exact or wildcard); null when the pattern is literal. */
  segs: readonly Seg[] | null;
  paramNames: readonly string[];
  methods: readonly string[] | null;
  headers: readonly HeaderCond[];
  /** Hash of the literal first path segment (ASCII-lower-cased when ci); -1 = none (param / '/*'). */
  headHash: number;
}

interface Bucket<T> {
  exact: Map<string, Cand<T>[]>;
  exactCI: Cand<T>[];
  /** Every non-exact candidate, in rank order. */
  ordered: Cand<T>[];
}

interface WildHost<T> {
  suffix: string; // '.example.com'
  port: string; // '' = any port
  bucket: Bucket<T>;
}

interface Table<T> {
  hasHosts: boolean;
  hasPortHosts: boolean;
  exactHosts: Map<string, Bucket<T>>;
  wild: WildHost<T>[];
  any: Bucket<T>;
}

interface HostPattern {
  wildcard: boolean;
  name: string; // lower-case, no trailing dot; for wildcards the suffix including the leading '.'
  port: string; // '' = any
}

interface Compiled<T> {
  cand: Cand<T>;
  hosts: HostPattern[] | null;
  listeners: readonly string[] | undefined;
  // sort keys
  index: number;
  literalSegs: number;
  segCount: number;
  literalPrefixLen: number;
}

const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const HOST_PATTERN = /^(\*\.)?[A-Za-z0-9.-]+(:[0-9]+)?$/;

function asciiLower(s: string): string {
  return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

// Hand-written comparisons: String#startsWith with a position argument measured several times
// slower than this loop in V8 for the short literals routes use.
/** path[pos .. pos+lit.length) equals lit. */
function eqAt(path: string, pos: number, lit: string): boolean {
  const n = lit.length;
  if (pos + n > path.length) return false;
  for (let k = 0; k < n; k++) if (path.charCodeAt(pos + k) !== lit.charCodeAt(k)) return false;
  return true;
}

/** path[pos .. pos+lit.length) equals lit (already ASCII-lower-case), folding ASCII A-Z. */
function eqCI(path: string, pos: number, lit: string): boolean {
  const n = lit.length;
  if (pos + n > path.length) return false;
  for (let k = 0; k < n; k++) {
    let c = path.charCodeAt(pos + k);
    if (c >= 65 && c <= 90) c |= 32;
    if (c !== lit.charCodeAt(k)) return false;
  }
  return true;
}

/**
 * Cheap hash of s[from, to), optionally folding ASCII A-Z; kept within the small-integer range so
 * it never allocates. Used only as a pre-filter: a real comparison always follows.
 */
function hashSeg(s: string, from: number, to: number, fold: boolean): number {
  let h = 7;
  for (let k = from; k < to; k++) {
    let c = s.charCodeAt(k);
    if (fold && c >= 65 && c <= 90) c |= 32;
    h = (h * 31 + c) & 0x3fffffff;
  }
  return h;
}

function routeError(id: string, msg: string): Error {
  return new Error(`route "${id}": ${msg}`);
}

function compileHost(id: string, raw: string): HostPattern {
  if (!HOST_PATTERN.test(raw)) throw routeError(id, `invalid host pattern "${raw}"`);
  let s = raw.toLowerCase();
  let port = '';
  const colon = s.indexOf(':');
  if (colon >= 0) {
    const p = Number(s.slice(colon + 1));
    if (p > 65535) throw routeError(id, `invalid port in host pattern "${raw}"`);
    port = String(p);
    s = s.slice(0, colon);
  }
  if (s.endsWith('.')) s = s.slice(0, -1);
  const wildcard = s.startsWith('*.');
  const name = wildcard ? s.slice(1) : s;
  if (name === '' || name === '.' || name.startsWith('..')) throw routeError(id, `invalid host pattern "${raw}"`);
  return { wildcard, name, port };
}

function checkNormalized(id: string, what: string, pattern: string): void {
  const r = normalizeRequestTarget(encodePathForUpstream(pattern));
  if (!r.ok || r.path !== pattern) {
    throw routeError(id, `${what} "${pattern}" is not a normalized, decoded path (no %-escapes, '.'/'..' or '//'), so it could never match`);
  }
}

function compileEntry<T>(e: RouteEntry<T>, index: number): Compiled<T> {
  const { id, match } = e;
  const ci = match.caseInsensitive === true;
  let kind = K_ANY;
  let lit = '';
  let needSlash = false;
  let segs: Seg[] | null = null;
  const paramNames: string[] = [];
  let literalSegs = 0;
  let segCount = 0;
  let literalPrefixLen = 0;

  if (match.path !== undefined && match.pathPrefix !== undefined) {
    throw routeError(id, 'set either match.path or match.pathPrefix, not both');
  }
  if (match.path !== undefined) {
    const pattern = match.path;
    if (!pattern.startsWith('/')) throw routeError(id, `path "${pattern}" must start with '/'`);
    checkNormalized(id, 'path', pattern);
    const parts = pattern.slice(1).split('/');
    let wild = false;
    if (parts.length > 0 && parts[parts.length - 1] === '*') {
      wild = true;
      parts.pop();
    }
    const built: Seg[] = [];
    let prefixDone = false;
    let prefixText = '';
    for (const part of parts) {
      if (part.includes('*')) throw routeError(id, `path "${pattern}": '*' is only allowed as the final segment ('/prefix/*')`);
      if (part.startsWith(':')) {
        const name = part.slice(1);
        if (!PARAM_NAME.test(name) || name === '__proto__') {
          throw routeError(id, `path "${pattern}": invalid parameter name "${part}" (use :name with letters, digits, '_')`);
        }
        if (paramNames.includes(name)) throw routeError(id, `path "${pattern}": duplicate parameter ":${name}"`);
        built.push({ lit: '', param: paramNames.length });
        paramNames.push(name);
        prefixDone = true;
      } else {
        const l = ci ? asciiLower(part) : part;
        built.push({ lit: l, param: -1 });
        literalSegs++;
        if (!prefixDone) prefixText += '/' + l;
      }
    }
    segCount = built.length;
    if (wild) {
      kind = K_WILD;
      literalPrefixLen = prefixText.length;
      if (paramNames.length > 0) segs = built;
      else lit = prefixText;
    } else if (paramNames.length > 0) {
      kind = K_PARAM;
      segs = built;
    } else {
      kind = K_EXACT;
      lit = ci ? asciiLower(pattern) : pattern;
    }
  } else if (match.pathPrefix !== undefined) {
    const pattern = match.pathPrefix;
    if (!pattern.startsWith('/')) throw routeError(id, `pathPrefix "${pattern}" must start with '/'`);
    checkNormalized(id, 'pathPrefix', pattern);
    const parts = pattern.slice(1).split('/');
    for (const part of parts) {
      if (part.includes('*') || part.startsWith(':')) {
        throw routeError(id, `pathPrefix "${pattern}" is literal; for parameters or wildcards use path (e.g. "/users/:id/*")`);
      }
    }
    kind = K_PREFIX;
    needSlash = pattern.length > 1 && pattern.endsWith('/');
    const fixed = pattern.endsWith('/') ? pattern.slice(0, -1) : pattern;
    lit = ci ? asciiLower(fixed) : fixed;
    literalPrefixLen = pattern.length === 1 ? 0 : pattern.length;
    literalSegs = segCount = fixed === '' ? 0 : parts.length;
  }

  let methods: string[] | null = null;
  if (match.methods !== undefined) {
    methods = [];
    for (const m of match.methods) {
      if (!/^[A-Z]+$/.test(m)) throw routeError(id, `invalid method "${m}" (upper-case token expected)`);
      if (!methods.includes(m)) methods.push(m);
    }
  }

  const headers: HeaderCond[] = [];
  if (match.headers !== undefined) {
    for (const [rawName, cond] of Object.entries(match.headers)) {
      const name = rawName.toLowerCase();
      if ('present' in cond) headers.push({ name, kind: cond.present ? H_PRESENT : H_ABSENT, values: [] });
      else if ('equals' in cond) headers.push({ name, kind: H_EQUALS, values: [cond.equals] });
      else if ('oneOf' in cond) headers.push({ name, kind: H_ONE_OF, values: [...cond.oneOf] });
      else throw routeError(id, `invalid condition for header "${rawName}"`);
    }
  }

  let hosts: HostPattern[] | null = null;
  if (match.hosts !== undefined) hosts = match.hosts.map((h) => compileHost(id, h));

  const cand: Cand<T> = {
    id, value: e.value, rank: 0, kind, ci, lit, needSlash, segs, paramNames, methods, headers, headHash: -1,
  };
  if (segs !== null) {
    const first = segs[0];
    if (first !== undefined && first.param < 0) cand.headHash = hashSeg(first.lit, 0, first.lit.length, false);
  } else if ((kind === K_WILD || kind === K_PREFIX) && lit !== '') {
    const slash = lit.indexOf('/', 1);
    cand.headHash = hashSeg(lit, 1, slash === -1 ? lit.length : slash, false);
  }
  return { cand, hosts, listeners: e.listeners, index, literalSegs, segCount, literalPrefixLen };
}

function tierOf(kind: number): number {
  return kind === K_PREFIX ? K_WILD : kind; // wildcard paths and prefixes share a tier
}

function comparePrecedence<T>(a: Compiled<T>, b: Compiled<T>): number {
  const ta = tierOf(a.cand.kind);
  const tb = tierOf(b.cand.kind);
  if (ta !== tb) return ta - tb;
  if (ta === K_WILD && a.literalPrefixLen !== b.literalPrefixLen) return b.literalPrefixLen - a.literalPrefixLen;
  if (a.literalSegs !== b.literalSegs) return b.literalSegs - a.literalSegs;
  if (a.segCount !== b.segCount) return b.segCount - a.segCount;
  const ma = a.cand.methods !== null ? 1 : 0;
  const mb = b.cand.methods !== null ? 1 : 0;
  if (ma !== mb) return mb - ma;
  if (a.cand.headers.length !== b.cand.headers.length) return b.cand.headers.length - a.cand.headers.length;
  return a.index - b.index;
}

function newBucket<T>(): Bucket<T> {
  return { exact: new Map(), exactCI: [], ordered: [] };
}

function addToBucket<T>(b: Bucket<T>, c: Cand<T>): void {
  if (c.kind === K_EXACT) {
    if (c.ci) {
      b.exactCI.push(c);
    } else {
      const list = b.exact.get(c.lit);
      if (list === undefined) b.exact.set(c.lit, [c]);
      else list.push(c);
    }
  } else {
    b.ordered.push(c);
  }
}

function buildTable<T>(sorted: readonly Compiled<T>[]): Table<T> {
  const exactHosts = new Map<string, Bucket<T>>();
  const wildByKey = new Map<string, WildHost<T>>();
  const any = newBucket<T>();
  let hasPortHosts = false;
  for (const c of sorted) {
    if (c.hosts === null) {
      addToBucket(any, c.cand);
      continue;
    }
    const seen = new Set<string>();
    for (const h of c.hosts) {
      const key = h.port === '' ? h.name : `${h.name}:${h.port}`;
      if (h.wildcard) {
        if (seen.has('*' + key)) continue;
        seen.add('*' + key);
        let w = wildByKey.get(key);
        if (w === undefined) {
          w = { suffix: h.name, port: h.port, bucket: newBucket<T>() };
          wildByKey.set(key, w);
        }
        addToBucket(w.bucket, c.cand);
      } else {
        if (seen.has(key)) continue;
        seen.add(key);
        if (h.port !== '') hasPortHosts = true;
        let b = exactHosts.get(key);
        if (b === undefined) {
          b = newBucket<T>();
          exactHosts.set(key, b);
        }
        addToBucket(b, c.cand);
      }
    }
  }
  const wild = [...wildByKey.values()].sort((a, b) =>
    b.suffix.length - a.suffix.length || (a.port === '' ? 1 : 0) - (b.port === '' ? 1 : 0));
  return { hasHosts: exactHosts.size > 0 || wild.length > 0, hasPortHosts, exactHosts, wild, any };
}

export function compileRouter<T>(entries: readonly RouteEntry<T>[]): Router<T> {
  const compiled = entries.map((e, i) => compileEntry(e, i));
  const sorted = [...compiled].sort(comparePrecedence);
  sorted.forEach((c, i) => { c.cand.rank = i; });

  let maxParams = 0;
  const listenerNames = new Set<string>();
  for (const c of compiled) {
    maxParams = Math.max(maxParams, c.cand.paramNames.length);
    if (c.listeners !== undefined) for (const l of c.listeners) listenerNames.add(l);
  }
  // Listeners named by no route see only the unrestricted routes.
  const defaultTable = buildTable(sorted.filter((c) => c.listeners === undefined));
  const byListener = new Map<string, Table<T>>();
  for (const name of listenerNames) {
    byListener.set(name, buildTable(sorted.filter((c) => c.listeners === undefined || c.listeners.includes(name))));
  }

  // Param (start, end) offsets of the candidate being tried; `find` is synchronous, so one
  // scratch array per router is safe and spares an allocation per attempt.
  const spans = new Int32Array(Math.max(2, maxParams * 2));

  function headersOk(conds: readonly HeaderCond[], headers: RequestHeaders): boolean {
    for (let k = 0; k < conds.length; k++) {
      const h = conds[k]!;
      const v = headers[h.name];
      // typeof checks (not `in`) so inherited names like 'constructor' never count as present.
      const present = typeof v === 'string' || Array.isArray(v);
      if (h.kind === H_PRESENT) { if (!present) return false; continue; }
      if (h.kind === H_ABSENT) { if (present) return false; continue; }
      const single = typeof v === 'string' ? v : Array.isArray(v) && v.length === 1 ? v[0] : undefined;
      if (typeof single !== 'string' || !h.values.includes(single)) return false;
    }
    return true;
  }

  function condsOk(c: Cand<T>, method: string, headers: RequestHeaders): boolean {
    if (c.methods !== null && !c.methods.includes(method)) return false;
    return c.headers.length === 0 || headersOk(c.headers, headers);
  }

  /** Matches :param segments from the start of path; returns the end offset or -1. */
  function matchSegs(segs: readonly Seg[], ci: boolean, path: string): number {
    let pos = 0;
    const len = path.length;
    for (let k = 0; k < segs.length; k++) {
      if (path.charCodeAt(pos) !== 47) return -1;
      pos++;
      let end = path.indexOf('/', pos);
      if (end === -1) end = len;
      const s = segs[k]!;
      if (s.param >= 0) {
        if (end === pos) return -1;
        spans[s.param * 2] = pos;
        spans[s.param * 2 + 1] = end;
      } else if (end - pos !== s.lit.length || !(ci ? eqCI(path, pos, s.lit) : eqAt(path, pos, s.lit))) {
        return -1;
      }
      pos = end;
    }
    return pos;
  }

  /** Literal prefix on a segment boundary; returns the prefix length or -1. */
  function matchPrefix(c: Cand<T>, path: string): number {
    const n = c.lit.length;
    if (!(c.ci ? eqCI(path, 0, c.lit) : eqAt(path, 0, c.lit))) return -1;
    if (path.length === n) return c.needSlash || n === 0 ? -1 : n;
    return path.charCodeAt(n) === 47 ? n : -1;
  }

  function makeParams(c: Cand<T>, path: string): Record<string, string> {
    const names = c.paramNames;
    if (names.length === 0) return EMPTY_PARAMS;
    const params: Record<string, string> = {};
    for (let k = 0; k < names.length; k++) params[names[k]!] = path.slice(spans[k * 2]!, spans[k * 2 + 1]!);
    return params;
  }

  // Hashes of the request's first path segment, set once per find (find is synchronous).
  let reqHead = 0;
  let reqHeadCI = 0;

  function searchBucket(b: Bucket<T>, method: string, path: string, headers: RequestHeaders): RouteHit<T> | null {
    // Tier 1: exact paths. Case-sensitive ones come from the map, case-insensitive ones from a
    // short list; both are rank-sorted, so merge them to keep the documented order.
    const list = b.exact.get(path);
    const ci = b.exactCI;
    const ln = list === undefined ? 0 : list.length;
    let i = 0;
    let j = 0;
    while (i < ln || j < ci.length) {
      let c: Cand<T>;
      if (j >= ci.length || (i < ln && list![i]!.rank < ci[j]!.rank)) {
        c = list![i++]!;
      } else {
        c = ci[j++]!;
        if (path.length !== c.lit.length || !eqCI(path, 0, c.lit)) continue;
      }
      if (condsOk(c, method, headers)) return { value: c.value, params: EMPTY_PARAMS, wildcard: undefined, prefixLength: path.length };
    }

    const ordered = b.ordered;
    for (let k = 0; k < ordered.length; k++) {
      const c = ordered[k]!;
      // Most candidates differ in their first segment: reject them on one integer compare.
      if (c.headHash >= 0 && c.headHash !== (c.ci ? reqHeadCI : reqHead)) continue;
      if (c.methods !== null && !c.methods.includes(method)) continue;
      let end: number;
      switch (c.kind) {
        case K_PARAM:
          if (matchSegs(c.segs!, c.ci, path) !== path.length) continue;
          if (c.headers.length !== 0 && !headersOk(c.headers, headers)) continue;
          return { value: c.value, params: makeParams(c, path), wildcard: undefined, prefixLength: path.length };
        case K_WILD:
          end = c.segs === null ? matchPrefix(c, path) : matchSegs(c.segs, c.ci, path);
          if (end < 0) continue;
          if (c.headers.length !== 0 && !headersOk(c.headers, headers)) continue;
          return {
            value: c.value,
            params: makeParams(c, path),
            wildcard: end >= path.length ? '' : path.slice(end + 1),
            prefixLength: end,
          };
        case K_PREFIX:
          end = matchPrefix(c, path);
          if (end < 0) continue;
          if (c.headers.length !== 0 && !headersOk(c.headers, headers)) continue;
          return { value: c.value, params: EMPTY_PARAMS, wildcard: undefined, prefixLength: end };
        default: // K_ANY
          if (c.headers.length !== 0 && !headersOk(c.headers, headers)) continue;
          return { value: c.value, params: EMPTY_PARAMS, wildcard: undefined, prefixLength: 0 };
      }
    }
    return null;
  }

  function searchHosts(t: Table<T>, host: string, method: string, path: string, headers: RequestHeaders): RouteHit<T> | null {
    // Parse "name[:port]" / "[v6]:port" in place; allocate only if the name needs normalizing.
    const len = host.length;
    let nameEnd = len;
    let portStart = -1;
    let upper = false;
    if (host.charCodeAt(0) === 91 /* [ */) {
      const close = host.indexOf(']');
      if (close < 0) return null;
      for (let k = 1; k < close; k++) {
        const c = host.charCodeAt(k);
        if (!((c >= 48 && c <= 58) || (c >= 97 && c <= 102) || c === 46)) {
          if (c >= 65 && c <= 70) upper = true;
          else return null;
        }
      }
      nameEnd = close + 1;
      if (nameEnd < len) {
        if (host.charCodeAt(nameEnd) !== 58) return null;
        portStart = nameEnd + 1;
      }
    } else {
      for (let k = 0; k < len; k++) {
        const c = host.charCodeAt(k);
        if (c === 58 /* : */) { nameEnd = k; portStart = k + 1; break; }
        if (c >= 97 && c <= 122) continue;
        if ((c >= 48 && c <= 57) || c === 45 || c === 46 || c === 95) continue;
        if (c >= 65 && c <= 90) { upper = true; continue; }
        return null;
      }
    }
    if (portStart >= 0) {
      for (let k = portStart; k < len; k++) {
        const c = host.charCodeAt(k);
        if (c < 48 || c > 57) return null;
      }
    }
    const hasPort = portStart >= 0 && portStart < len;
    let nameLen = nameEnd;
    if (nameLen > 0 && host.charCodeAt(nameLen - 1) === 46) nameLen--; // 'example.com.' is 'example.com'
    if (nameLen === 0) return null;
    const clean = !upper && nameLen === nameEnd;
    const name = clean && nameEnd === len ? host : upper ? host.slice(0, nameLen).toLowerCase() : host.slice(0, nameLen);

    let b: Bucket<T> | undefined;
    let hit: RouteHit<T> | null;
    if (hasPort && t.hasPortHosts) {
      b = t.exactHosts.get(clean && portStart === nameEnd + 1 ? host : name + host.slice(nameEnd));
      if (b !== undefined && (hit = searchBucket(b, method, path, headers)) !== null) return hit;
    }
    b = t.exactHosts.get(name);
    if (b !== undefined && (hit = searchBucket(b, method, path, headers)) !== null) return hit;

    const wild = t.wild;
    for (let k = 0; k < wild.length; k++) {
      const w = wild[k]!;
      if (w.port !== '' && !(hasPort && len - portStart === w.port.length && eqAt(host, portStart, w.port))) continue;
      if (name.length > w.suffix.length && eqAt(name, name.length - w.suffix.length, w.suffix) && (hit = searchBucket(w.bucket, method, path, headers)) !== null) return hit;
    }
    return null;
  }

  return {
    find(listener, host, method, path, headers) {
      const t = byListener.get(listener) ?? defaultTable;
      let firstEnd = path.indexOf('/', 1);
      if (firstEnd === -1) firstEnd = path.length;
      reqHead = hashSeg(path, 1, firstEnd, false);
      reqHeadCI = hashSeg(path, 1, firstEnd, true);
      if (t.hasHosts && host.length !== 0) {
        const hit = searchHosts(t, host, method, path, headers);
        if (hit !== null) return hit;
      }
      return searchBucket(t.any, method, path, headers);
    },
  };
}
