// Configuration issues: the shared issue type, JS-like paths (`routes[1].match.path`), "did you mean"
// suggestions, and the translation of ajv's raw errors into one readable issue per real problem.
import type { ErrorObject } from 'ajv';

export interface ConfigIssue {
  file: string;
  /** JS-like path of the offending value, e.g. `routes[1].match.path`; '' = the whole document */
  path: string;
  message: string;
  /** 1-based */
  line?: number;
  /** 1-based */
  column?: number;
  severity: 'error' | 'warning';
}

export type PathSegment = string | number;

/**
 * An issue from a semantic check (src/config/semantic.ts and the per-feature `semantic.ts` files), before
 * the loader attaches file and position. Here, in a leaf module, so those files do not import the
 * aggregator that imports them.
 */
export type SemanticIssue = Omit<ConfigIssue, 'file' | 'line' | 'column'>;

/** An issue before the loader attaches file and position. `at: 'key'` points at the key, not its value. */
export interface RawIssue {
  path: PathSegment[];
  message: string;
  severity: 'error' | 'warning';
  at?: 'key';
}

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** ['routes', 1, 'match', 'path'] → `routes[1].match.path`; odd keys are quoted: `set["X-Api-Key"]`. */
export function formatPath(segments: readonly PathSegment[]): string {
  let out = '';
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else if (IDENT.test(s)) out += out === '' ? s : `.${s}`;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out;
}

/** Inverse of formatPath. Throws on malformed input (paths are produced by formatPath). */
export function parsePath(path: string): PathSegment[] {
  const segs: PathSegment[] = [];
  let i = 0;
  while (i < path.length) {
    const c = path[i];
    if (c === '.') { i++; continue; }
    if (c === '[') {
      if (path[i + 1] === '"') {
        // JSON string up to the matching unescaped quote
        let j = i + 2;
        while (j < path.length && path[j] !== '"') j += path[j] === '\\' ? 2 : 1;
        segs.push(JSON.parse(path.slice(i + 1, j + 1)) as string);
        if (path[j + 1] !== ']') throw new Error(`malformed path: ${path}`);
        i = j + 2;
      } else {
        const j = path.indexOf(']', i);
        if (j < 0) throw new Error(`malformed path: ${path}`);
        const n = Number(path.slice(i + 1, j));
        if (!Number.isInteger(n)) throw new Error(`malformed path: ${path}`);
        segs.push(n);
        i = j + 1;
      }
      continue;
    }
    let j = i;
    while (j < path.length && path[j] !== '.' && path[j] !== '[') j++;
    segs.push(path.slice(i, j));
    i = j;
  }
  return segs;
}

/** `warning: file:line:col: path: message` (position and path omitted when unknown/empty). */
export function formatIssue(i: ConfigIssue): string {
  const where = i.line !== undefined ? `${i.file}:${i.line}:${i.column ?? 1}` : i.file;
  const body = `${where}: ${i.path ? `${i.path}: ` : ''}${i.message}`;
  return i.severity === 'warning' ? `warning: ${body}` : body;
}

/** Optimal-string-alignment distance (Levenshtein plus adjacent transpositions). */
export function editDistance(a: string, b: string): number {
  const m = a.length;
  const n = b.length;
  const d: number[][] = Array.from({ length: m + 1 }, (_, i) => Array.from({ length: n + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  const at = (i: number, j: number): number => d[i]?.[j] ?? Number.POSITIVE_INFINITY;
  for (let i = 1; i <= m; i++) {
    const row = d[i];
    if (!row) continue;
    for (let j = 1; j <= n; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, at(i - 2, j - 2) + 1);
      row[j] = v;
    }
  }
  return at(m, n);
}

/** The closest candidate within edit distance 2 (case-insensitive equality wins), or undefined. */
export function suggest(word: string, candidates: Iterable<string>, maxDistance = 2): string | undefined {
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    if (c === word) continue;
    const d = c.toLowerCase() === word.toLowerCase() ? 0 : editDistance(word, c);
    // very short words: one edit already changes their meaning
    const limit = Math.min(maxDistance, Math.max(1, Math.floor(Math.min(word.length, c.length) / 2)));
    if (d <= limit && d < bestD) { best = c; bestD = d; }
  }
  return best;
}

// ---------------------------------------------------------------- ajv errors → issues

type SchemaLike = Record<string, unknown>;

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const asSchema = (v: unknown): SchemaLike => (isObj(v) ? v : {});

function pointerSegments(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** JSON pointer → path segments, numeric where the data at that point is an array. */
function toPath(pointer: string, data: unknown): PathSegment[] {
  const out: PathSegment[] = [];
  let cur: unknown = data;
  for (const s of pointerSegments(pointer)) {
    if (Array.isArray(cur) && /^\d+$/.test(s)) {
      const n = Number(s);
      out.push(n);
      cur = cur[n];
    } else {
      out.push(s);
      cur = isObj(cur) ? cur[s] : undefined;
    }
  }
  return out;
}

const within = (inner: string, outer: string): boolean => inner === outer || inner.startsWith(`${outer}/`);

const TYPE_NAMES: Record<string, string> = {
  string: 'a string', integer: 'an integer', number: 'a number', boolean: 'a boolean (true or false)',
  object: 'an object (key: value mapping)', array: 'an array (list)', null: 'null',
};

function typeName(t: unknown): string {
  if (Array.isArray(t)) return t.map(typeName).join(' or ');
  return typeof t === 'string' ? (TYPE_NAMES[t] ?? t) : String(t);
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/** Short description of one alternative of a union, e.g. `{clientIp: true}`, `"auto"`, `an integer from 1 to 256`. */
function describeAlternative(s: SchemaLike): string {
  if ('const' in s) return JSON.stringify(s.const);
  if (Array.isArray(s.enum)) return s.enum.map((v) => JSON.stringify(v)).join(', ');
  if (s.type === 'object' && isObj(s.properties)) {
    const props = Object.entries(s.properties).map(([k, v]) => (isObj(v) && 'const' in v ? `${k}: ${JSON.stringify(v.const)}` : k));
    return `{${props.join(', ')}}`;
  }
  if (s.type === 'integer' || s.type === 'number') {
    const base = typeName(s.type);
    const min = typeof s.minimum === 'number' ? s.minimum : undefined;
    const max = typeof s.maximum === 'number' ? s.maximum : undefined;
    if (min !== undefined && max !== undefined) return `${base} from ${min} to ${max}`;
    if (min !== undefined) return `${base} >= ${min}`;
    if (max !== undefined) return `${base} <= ${max}`;
    return base;
  }
  if (s.type !== undefined) return typeName(s.type);
  return 'a valid value';
}

function oneOfText(alts: string[]): string {
  if (alts.length === 1) return `must be ${alts[0] ?? ''}`;
  if (alts.length === 2) return `must be ${alts[0] ?? ''} or ${alts[1] ?? ''}`;
  return `must be one of ${alts.join(', ')}`;
}

/** Keywords that, failing at the union's own level, show the value was not meant as that alternative. */
const SHAPE_KEYWORDS = new Set(['type', 'const', 'enum', 'required', 'additionalProperties', 'anyOf', 'oneOf']);

function singleError(e: ErrorObject, data: unknown): RawIssue {
  const path = toPath(e.instancePath, data);
  const p = e.params as Record<string, unknown>;
  const sev = 'error' as const;
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String(p.additionalProperty);
      const parent = asSchema(e.parentSchema);
      const known = isObj(parent.properties) ? Object.keys(parent.properties) : [];
      if (known.length === 0 && isObj(parent.patternProperties)) {
        const patterns = Object.keys(parent.patternProperties).map((x) => JSON.stringify(x)).join(' or ');
        return { path: [...path, key], at: 'key', severity: sev, message: `invalid key ${JSON.stringify(key)}: must match pattern ${patterns}` };
      }
      const s = suggest(key, known);
      return {
        path: [...path, key], at: 'key', severity: sev,
        message: `unknown key ${JSON.stringify(key)}${s ? `; did you mean ${JSON.stringify(s)}?` : ''}`,
      };
    }
    case 'required':
      return { path, severity: sev, message: `missing required key ${JSON.stringify(String(p.missingProperty))}` };
    case 'type': {
      const empty = e.data === null ? ' (the value is empty)' : '';
      return { path, severity: sev, message: `must be ${typeName(p.type)}${empty}` };
    }
    case 'const':
      return { path, severity: sev, message: `must be ${JSON.stringify(p.allowedValue)}` };
    case 'enum': {
      const vals = Array.isArray(p.allowedValues) ? p.allowedValues : [];
      const s = typeof e.data === 'string' ? suggest(e.data, vals.filter((v): v is string => typeof v === 'string')) : undefined;
      return { path, severity: sev, message: `${oneOfText(vals.map((v) => JSON.stringify(v)))}${s ? `; did you mean ${JSON.stringify(s)}?` : ''}` };
    }
    case 'pattern':
      return { path, severity: sev, message: `must match pattern ${JSON.stringify(String(p.pattern))}` };
    case 'minItems':
      return { path, severity: sev, message: `must have at least ${plural(Number(p.limit), 'item')}` };
    case 'maxItems':
      return { path, severity: sev, message: `must have at most ${plural(Number(p.limit), 'item')}` };
    case 'minLength':
      return { path, severity: sev, message: Number(p.limit) === 1 ? 'must not be empty' : `must be at least ${plural(Number(p.limit), 'character')} long` };
    case 'maxLength':
      return { path, severity: sev, message: `must be at most ${plural(Number(p.limit), 'character')} long` };
    case 'format':
      return { path, severity: sev, message: `must be a valid ${String(p.format)}` };
    default:
      return { path, severity: sev, message: e.message ?? `failed "${e.keyword}" check` };
  }
}

/** One message for a failed union where no single alternative is clearly the intended one. */
function unionMessage(e: ErrorObject, data: unknown): RawIssue {
  const path = toPath(e.instancePath, data);
  const alts = Array.isArray(e.schema) ? e.schema.map(asSchema) : [];
  let msg = oneOfText(alts.map(describeAlternative));
  const value: unknown = e.data;
  if (typeof value === 'string') {
    const consts = alts.map((a) => a.const).filter((c): c is string => typeof c === 'string');
    const s = suggest(value, consts);
    if (s) msg += `; did you mean ${JSON.stringify(s)}?`;
  } else if (isObj(value)) {
    const keys = new Set(alts.flatMap((a) => (isObj(a.properties) ? Object.keys(a.properties) : [])));
    const hints = Object.keys(value).filter((k) => !keys.has(k)).map((k) => {
      const s = suggest(k, keys);
      return `unknown key ${JSON.stringify(k)}${s ? `; did you mean ${JSON.stringify(s)}?` : ''}`;
    });
    if (hints.length > 0) msg += ` (${hints.join(', ')})`;
  }
  return { path, severity: 'error', message: msg };
}

function convert(errors: readonly ErrorObject[], data: unknown): RawIssue[] {
  const unions = errors.filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf');
  const belongsTo = (e: ErrorObject, u: ErrorObject): boolean =>
    e !== u && e.schemaPath.startsWith(`${u.schemaPath}/`) && within(e.instancePath, u.instancePath);
  // outermost unions: not themselves inside another failed union
  const outer = unions.filter((u) => !unions.some((o) => belongsTo(u, o)));
  const consumed = new Set<ErrorObject>();
  const replacement = new Map<ErrorObject, RawIssue[]>();
  for (const u of outer) {
    const inner = errors.filter((e) => belongsTo(e, u));
    for (const e of inner) consumed.add(e);
    const byBranch = new Map<string, ErrorObject[]>();
    for (const e of inner) {
      const branch = e.schemaPath.slice(u.schemaPath.length + 1).split('/')[0] ?? '';
      const list = byBranch.get(branch) ?? [];
      list.push(e);
      byBranch.set(branch, list);
    }
    const branches = [...byBranch.values()];
    // A discriminated union (`type: redis`): the branch whose discriminator matched is meant, even with a
    // required key missing ("state: missing url", not "state.type must be memory"); none matched: the
    // union's own message (with a suggestion for the discriminator).
    const isChild = (e: ErrorObject): boolean => e.instancePath.startsWith(`${u.instancePath}/`) && !e.instancePath.slice(u.instancePath.length + 1).includes('/');
    // discriminator keys: properties every alternative pins to a constant (`type` of `state:`)
    const alts = Array.isArray(u.schema) ? u.schema.map(asSchema) : [];
    const pinned = (a: ReturnType<typeof asSchema>): string[] => (isObj(a.properties) ? Object.entries(a.properties).filter(([, v]) => isObj(v) && 'const' in v).map(([k]) => k) : []);
    const discKeys = alts.length > 0 ? pinned(alts[0]!).filter((k) => alts.every((a) => pinned(a).includes(k))) : [];
    const discriminator = (e: ErrorObject): boolean => e.keyword === 'const' && isChild(e) && discKeys.includes(e.instancePath.slice(u.instancePath.length + 1));
    const plausible = branches.some((list) => list.some(discriminator))
      ? branches.filter((list) => !list.some(discriminator))
      : branches.filter((list) => !list.some((e) => e.instancePath === u.instancePath && SHAPE_KEYWORDS.has(e.keyword)));
    const only = plausible.length === 1 ? plausible[0] : undefined;
    replacement.set(u, only ? convert(only, data) : [unionMessage(u, data)]);
  }
  const out: RawIssue[] = [];
  for (const e of errors) {
    if (consumed.has(e)) continue;
    const r = replacement.get(e);
    if (r) out.push(...r);
    else if (e.keyword !== 'anyOf' && e.keyword !== 'oneOf') out.push(singleError(e, data));
    else out.push(unionMessage(e, data));
  }
  return out;
}

/**
 * Turns ajv errors (compiled with allErrors + verbose) into issues: JS-like paths, readable messages,
 * unknown-key suggestions, one message per failed union, duplicates removed.
 */
export function ajvErrorsToIssues(errors: readonly ErrorObject[] | null | undefined, data: unknown): RawIssue[] {
  const seen = new Set<string>();
  const out: RawIssue[] = [];
  for (const i of convert(errors ?? [], data)) {
    const k = `${formatPath(i.path)}\0${i.message}`;
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(i);
  }
  return out;
}
