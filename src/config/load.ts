// Loads a configuration file: parse (YAML or JSON, keeping positions), substitute ${ENV} / ${file:...}
// in string values, validate against GatewayConfigSchema, run the semantic checks, and report every
// problem as `file:line:col: path: message`. Never throws for bad input.
import { readFileSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { dirname, extname, resolve } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument, visit, type Document } from 'yaml';
import { GatewayConfigSchema, type GatewayConfig } from './schema.js';
import { ajvErrorsToIssues, formatPath, parsePath, type ConfigIssue, type PathSegment, type RawIssue } from './issues.js';
import { checkSemantics, type SemanticIssue } from './semantic.js';
import { checkTlsFiles } from '../tls/check.js';

export type { ConfigIssue } from './issues.js';
export { formatIssue } from './issues.js';

export type LoadResult =
  | { ok: true; file: string; config: GatewayConfig; warnings: ConfigIssue[]; placeholders?: string[] }
  | { ok: false; file: string; errors: ConfigIssue[]; warnings: ConfigIssue[] };

// ajv-formats is CommonJS with `exports.default`; under NodeNext the default import is the module object.
const addFormats = (addFormatsModule as unknown as { default: typeof addFormatsModule.default }).default ?? addFormatsModule;

const ajv = new Ajv({ allErrors: true, strict: true, verbose: true });
addFormats(ajv);
/** Compiled once, at module load. */
const validateSchema: ValidateFunction<GatewayConfig> = ajv.compile<GatewayConfig>(GatewayConfigSchema);

type Locate = (path: readonly PathSegment[], at?: 'key') => { line: number; column: number } | undefined;

interface Substitution { path: string; raw: string; value: string }

interface SubstCtx {
  env: NodeJS.ProcessEnv;
  baseDir: string;
  issues: RawIssue[];
  /** values that came from ${...}: kept out of messages */
  records: Substitution[];
  /** paths whose substitution failed: their schema errors would only be noise */
  failed: Set<string>;
  /** paths whose value may be missing (LoadOptions.optionalSecrets): a failed substitution gives a placeholder */
  optional?: ReadonlySet<string>;
  /** optional paths that got the placeholder */
  placeheld?: Set<string>;
}

export interface LoadOptions {
  /**
   * Paths (e.g. `identity.pepper`) whose `${...}` may fail to resolve without an error: the value becomes
   * a placeholder and the path is listed in `placeholders` of the result. For commands that do not use
   * that value (`keys list` reads metadata; it needs no pepper).
   */
  optionalSecrets?: readonly string[];
}

/** The stand-in for an optional secret that is not available (long enough for any minimum length). */
export const PLACEHOLDER_SECRET = 'placeholder-secret-not-available-0123456789abcdef';

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function fsReason(e: unknown): string {
  const code = isObj(e) ? e.code : undefined;
  if (code === 'ENOENT') return 'file not found';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'is a directory';
  return e instanceof Error ? e.message : String(e);
}

// ---------------------------------------------------------------- substitution

const VAR_EXPR = /^([A-Za-z_][A-Za-z0-9_]*)(?::-([\s\S]*))?$/;

function resolveExpr(expr: string, path: PathSegment[], ctx: SubstCtx): string | undefined {
  const fail = (message: string): undefined => { ctx.issues.push({ path, message, severity: 'error' }); return undefined; };
  if (expr.startsWith('file:')) {
    const rel = expr.slice(5);
    if (rel === '') return fail('empty path in "${file:}"');
    const abs = resolve(ctx.baseDir, rel);
    try {
      // one trailing newline is almost always an editor artefact, not part of the secret
      return readFileSync(abs, 'utf8').replace(/\r?\n$/, '');
    } catch (e) {
      return fail(`cannot read ${JSON.stringify(abs)} for "\${file:${rel}}": ${fsReason(e)}`);
    }
  }
  const m = VAR_EXPR.exec(expr);
  if (!m) return fail(`invalid substitution "\${${expr}}": expected \${NAME}, \${NAME:-default} or \${file:path} (write "$\${" for a literal "\${")`);
  const name = m[1] ?? '';
  const def = m[2];
  const v = ctx.env[name];
  if (def !== undefined) return v === undefined || v === '' ? def : v;
  if (v === undefined) return fail(`environment variable "${name}" is not set (use "\${${name}:-default}" to give a default)`);
  return v;
}

/** Expands one string; undefined when nothing changed or it failed (failures are recorded in ctx). */
function substitute(s: string, path: PathSegment[], ctx: SubstCtx): { value: string; whole: boolean } | undefined {
  if (!s.includes('${')) return undefined;
  const issuesBefore = ctx.issues.length;
  let out = '';
  let exprs = 0;
  let whole = false;
  let failed = false;
  let i = 0;
  while (i < s.length) {
    if (s.startsWith('$${', i)) { out += '${'; i += 3; continue; }
    if (s.startsWith('${', i)) {
      const end = s.indexOf('}', i + 2);
      if (end < 0) {
        ctx.issues.push({ path, severity: 'error', message: 'unterminated "${" (write "$${" for a literal "${")' });
        failed = true;
        break;
      }
      const v = resolveExpr(s.slice(i + 2, end), path, ctx);
      if (v === undefined) failed = true;
      else out += v;
      if (i === 0 && end === s.length - 1) whole = true;
      exprs++;
      i = end + 1;
      continue;
    }
    out += s[i];
    i++;
  }
  if (failed && ctx.optional?.has(formatPath(path)) === true) {
    // drop what resolveExpr reported for this value: it is allowed to be unavailable here
    while (ctx.issues.length > issuesBefore) ctx.issues.pop();
    ctx.placeheld?.add(formatPath(path));
    return { value: PLACEHOLDER_SECRET, whole: false };
  }
  if (failed) { ctx.failed.add(formatPath(path)); return undefined; }
  if (exprs > 0) ctx.records.push({ path: formatPath(path), raw: s, value: out });
  return { value: out, whole: whole && exprs === 1 };
}

/** A plain YAML scalar that was only `${X}` gets the type it would have had if written literally. */
function retype(s: string): string | number | boolean {
  if (/^[-+]?(0|[1-9][0-9]*)$/.test(s) || /^[-+]?([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)([eE][-+]?[0-9]+)?$/.test(s)) return Number(s);
  if (s === 'true') return true;
  if (s === 'false') return false;
  return s;
}

const keyText = (k: unknown): string => (isScalar(k) ? String(k.value) : String(k));

function substituteYaml(node: unknown, path: PathSegment[], ctx: SubstCtx): void {
  if (isMap(node)) {
    for (const pair of node.items) substituteYaml(pair.value, [...path, keyText(pair.key)], ctx);
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => substituteYaml(item, [...path, i], ctx));
  } else if (isScalar(node) && typeof node.value === 'string') {
    const r = substitute(node.value, path, ctx);
    if (r) node.value = node.type === 'PLAIN' && r.whole ? retype(r.value) : r.value;
  }
}

function substituteJs(v: unknown, path: PathSegment[], ctx: SubstCtx): unknown {
  if (typeof v === 'string') return substitute(v, path, ctx)?.value ?? v;
  if (Array.isArray(v)) {
    v.forEach((x, i) => { v[i] = substituteJs(x, [...path, i], ctx); });
  } else if (isObj(v)) {
    for (const k of Object.keys(v)) {
      // defineProperty: a "__proto__" key from JSON.parse must stay an own property
      Object.defineProperty(v, k, { value: substituteJs(v[k], [...path, k], ctx), writable: true, enumerable: true, configurable: true });
    }
  }
  return v;
}

// ---------------------------------------------------------------- positions

function makeLocate(doc: Document, lc: LineCounter): Locate {
  return (path, at) => {
    let node: unknown = doc.contents;
    let target: unknown = node;
    for (let i = 0; i < path.length; i++) {
      const seg = path[i];
      if (isAlias(node)) node = node.resolve(doc);
      if (isMap(node)) {
        const pair = node.items.find((p) => keyText(p.key) === String(seg));
        if (!pair) break;
        const empty = pair.value === null || pair.value === undefined || (isScalar(pair.value) && pair.value.value === null);
        if ((i === path.length - 1 && at === 'key') || empty) { target = pair.key; break; }
        node = pair.value;
        // a mapping or list starts on the line after its key: the key is the better place to point at
        target = isMap(node) || isSeq(node) ? pair.key : node;
      } else if (isSeq(node) && typeof seg === 'number') {
        const item: unknown = node.items[seg];
        if (item === undefined || item === null) break;
        node = item;
        target = item;
      } else break;
    }
    const range = isObj(target) && Array.isArray(target.range) ? (target.range as unknown[]) : undefined;
    const offset = range?.[0];
    if (typeof offset !== 'number') return undefined;
    const { line, col } = lc.linePos(offset);
    return { line, column: col };
  };
}

/** The text of the mapping key that starts at `offset` (for duplicate-key errors). */
function keyAt(doc: Document, offset: number): string | undefined {
  let found: string | undefined;
  visit(doc, {
    Pair(_, pair) {
      const k = pair.key;
      if (isScalar(k) && k.range?.[0] === offset) { found = String(k.value); return visit.BREAK; }
      return undefined;
    },
  });
  return found;
}

/** Where and why JSON.parse failed (V8 does not always give a position). undefined if it finds none. */
function jsonSyntaxError(s: string): { offset: number; message: string } | undefined {
  class Fail { constructor(readonly offset: number, readonly message: string) {} }
  let i = 0;
  const fail = (message?: string): never => {
    throw new Fail(i, message ?? (i >= s.length ? 'unexpected end of input' : `unexpected ${JSON.stringify(s[i])}`));
  };
  const ws = (): void => { while (i < s.length && ' \t\n\r'.includes(s[i] ?? '')) i++; };
  const str = (): void => {
    i++;
    while (i < s.length) {
      const c = s[i] ?? '';
      if (c === '"') { i++; return; }
      if (c === '\\') {
        const n = s[i + 1] ?? '';
        if (n === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(s.slice(i + 2, i + 6))) fail('invalid \\u escape in string');
          i += 6;
        } else {
          if (!'"\\/bfnrt'.includes(n) || n === '') fail('invalid escape in string');
          i += 2;
        }
        continue;
      }
      if (c < ' ') fail('unescaped control character in string');
      i++;
    }
    fail('unterminated string');
  };
  const num = /-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?/y;
  const value = (): void => {
    ws();
    const c = s[i];
    if (c === '{') {
      i++; ws();
      if (s[i] === '}') { i++; return; }
      for (;;) {
        ws();
        if (s[i] !== '"') fail(s[i] === undefined ? undefined : `expected a double-quoted property name, found ${JSON.stringify(s[i])}`);
        str(); ws();
        if (s[i] !== ':') fail();
        i++;
        value(); ws();
        if (s[i] === ',') { i++; continue; }
        if (s[i] === '}') { i++; return; }
        fail();
      }
    }
    if (c === '[') {
      i++; ws();
      if (s[i] === ']') { i++; return; }
      for (;;) {
        value(); ws();
        if (s[i] === ',') { i++; continue; }
        if (s[i] === ']') { i++; return; }
        fail();
      }
    }
    if (c === '"') { str(); return; }
    for (const w of ['true', 'false', 'null']) if (s.startsWith(w, i)) { i += w.length; return; }
    num.lastIndex = i;
    const m = num.exec(s);
    if (m && m[0] !== '' && m[0] !== '-') { i += m[0].length; return; }
    fail();
  };
  try {
    value(); ws();
    if (i < s.length) fail();
    return undefined;
  } catch (e) {
    return e instanceof Fail ? { offset: e.offset, message: e.message } : undefined;
  }
}

function offsetToLineCol(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text[i] === '\n') { line++; lineStart = i + 1; }
  }
  return { line, column: offset - lineStart + 1 };
}

// ---------------------------------------------------------------- YAML syntax errors

/** The yaml package's errors that almost always mean a line is indented wrongly (or lacks its "- "). */
function isIndentationError(code: string, message: string): boolean {
  if (code === 'TAB_AS_INDENT') return true;
  // BAD_INDENT also covers unterminated flow collections and block scalars: not a matter of columns
  if (code === 'BAD_INDENT') return /^All (mapping|sequence) items must start at the same column/.test(message);
  return code === 'MISSING_CHAR' && /^(Sequence item without - indicator|Implicit map keys need to be followed by map values)/.test(message);
}

/** A source line as it appears in a message: quoted (a tab shows as \t), long lines cut. */
function quoteLine(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 77)}...` : text);
}

interface LineShape { indent: number; item: boolean; key: number; blank: boolean; tab: boolean }

/** Leading whitespace, whether the line is a list item (`- `), and where its key starts (0-based). */
function shapeOf(text: string): LineShape {
  const ws = /^[ \t]*/.exec(text)?.[0] ?? '';
  const rest = text.slice(ws.length);
  const blank = rest === '' || rest.startsWith('#');
  const m = /^-( +|$)/.exec(rest);
  let key = ws.length;
  // "- - x" and "- key: v": the key is after every dash
  if (m) { const d = /^(?:-(?: +|$))+/.exec(rest)?.[0] ?? ''; key = ws.length + d.length; }
  return { indent: ws.length, item: m !== null, key, blank, tab: ws.includes('\t') };
}

/**
 * The indentation levels open at a line: walking up from the line before it, each line less indented than
 * everything since opens a level (its key column; for a list item also the column of its "-").
 */
function openLevels(lines: readonly string[], index: number): { keys: { col: number; line: number }[]; items: { col: number; line: number }[] } {
  const keys: { col: number; line: number }[] = [];
  const items: { col: number; line: number }[] = [];
  let min = Number.POSITIVE_INFINITY;
  for (let j = index - 1; j >= 0 && min > 0; j--) {
    const s = shapeOf(lines[j] ?? '');
    if (s.blank || s.tab) continue;
    if (s.item) {
      if (s.key < min && s.key > s.indent) keys.push({ col: s.key, line: j + 1 });
      if (s.indent < min) { items.push({ col: s.indent, line: j + 1 }); min = s.indent; }
    } else if (s.indent < min) {
      keys.push({ col: s.indent, line: j + 1 });
      min = s.indent;
    }
  }
  return { keys, items };
}

/**
 * A YAML syntax error with the offending line quoted and, for indentation problems, which column the
 * neighbouring keys (or list items) use. `column` (1-based) points at the line's first character when the
 * problem is the indentation; `followOn` marks an indentation error on a line whose indentation matches
 * an open level (a consequence of an earlier error, dropped when one was reported).
 */
export function explainYamlError(lines: readonly string[], code: string, message: string, line: number): { message: string; column?: number; followOn?: boolean } {
  const text = lines[line - 1];
  if (text === undefined) return { message };
  const where = `line ${line} ${quoteLine(text)}`;
  if (!isIndentationError(code, message)) return { message: text.trim() === '' ? message : `${message} (${where})` };
  const s = shapeOf(text);
  const { keys, items } = openLevels(lines, line - 1);
  const at = s.indent + 1;
  if (s.tab) {
    const k = keys[0];
    return { message: `${message}: ${where} is indented with a tab; YAML indentation must be spaces${k !== undefined ? ` (the keys above it start at column ${k.col + 1}, line ${k.line})` : ''}` };
  }
  const sameItem = items.find((i) => i.col === s.indent);
  if (sameItem !== undefined && !s.item) {
    return { message: `${message}: ${where} starts at column ${at}, where the list items above it start with "- " (line ${sameItem.line}); is its "- " missing?`, column: at };
  }
  if (keys.some((k) => k.col === s.indent) || (s.item && sameItem !== undefined)) {
    return { message: `${message}: ${where}; check the indentation of the lines above it`, column: at, followOn: true };
  }
  // the level the line was most likely meant for: the nearest key column (both when two are as near)
  const dist = Math.min(...keys.map((k) => Math.abs(k.col - s.indent)));
  const near = keys.filter((k) => Math.abs(k.col - s.indent) === dist);
  if (near.length === 0) return { message: `${message}: ${where}; check the indentation`, column: at };
  const cols = near.map((k) => `column ${k.col + 1} (line ${k.line})`).join(' or ');
  return { message: `${message}: ${where} starts at column ${at}, but the keys above it start at ${cols}; check the indentation`, column: at };
}

// ---------------------------------------------------------------- nesting depth

/**
 * How deep a configuration may nest. The deepest real configuration is a dozen levels; a 20,000-deep
 * document (generated by mistake, or on purpose) would otherwise exhaust the stack of every recursive step
 * after the parser (substitution, validation, the checks) with a bare "Maximum call stack size exceeded".
 */
export const MAX_CONFIG_DEPTH = 64;

const depthMessage = `nested more than ${MAX_CONFIG_DEPTH} levels deep (no configuration needs that many; is the file generated by mistake?)`;

/** The first node nested deeper than MAX_CONFIG_DEPTH, by an iterative walk (the walk itself cannot overflow). */
function tooDeepYaml(doc: Document): { path: PathSegment[]; offset: number } | undefined {
  const stack: { node: unknown; path: PathSegment[] }[] = [{ node: doc.contents, path: [] }];
  while (stack.length > 0) {
    const { node, path } = stack.pop()!;
    if (!isMap(node) && !isSeq(node)) continue;
    if (path.length >= MAX_CONFIG_DEPTH) return { path, offset: node.range?.[0] ?? 0 };
    if (isMap(node)) {
      for (let i = node.items.length - 1; i >= 0; i--) {
        const pair = node.items[i]!;
        const key = isScalar(pair.key) ? String(pair.key.value) : '?';
        stack.push({ node: pair.value, path: [...path, key] });
        if (isMap(pair.key) || isSeq(pair.key)) stack.push({ node: pair.key, path: [...path, '?'] });
      }
    } else {
      for (let i = node.items.length - 1; i >= 0; i--) stack.push({ node: node.items[i], path: [...path, i] });
    }
  }
  return undefined;
}

/** The same for an already-built value (programmatic configurations). */
export function tooDeepValue(value: unknown): PathSegment[] | undefined {
  const stack: { v: unknown; path: PathSegment[] }[] = [{ v: value, path: [] }];
  const seen = new Set<unknown>();
  while (stack.length > 0) {
    const { v, path } = stack.pop()!;
    if (typeof v !== 'object' || v === null || seen.has(v)) continue;
    seen.add(v);
    if (path.length >= MAX_CONFIG_DEPTH) return path;
    if (Array.isArray(v)) v.forEach((x, i) => stack.push({ v: x, path: [...path, i] }));
    else for (const k of Object.keys(v)) stack.push({ v: (v as Record<string, unknown>)[k], path: [...path, k] });
  }
  return undefined;
}

// ---------------------------------------------------------------- the loader

function sortIssues(list: ConfigIssue[]): ConfigIssue[] {
  return list
    .map((x, i) => ({ x, i }))
    .sort((a, b) => (a.x.line ?? 0) - (b.x.line ?? 0) || (a.x.column ?? 0) - (b.x.column ?? 0) || a.i - b.i)
    .map(({ x }) => x);
}

function related(a: string, b: string): boolean {
  const under = (inner: string, outer: string): boolean => outer === '' || inner === outer || inner.startsWith(`${outer}.`) || inner.startsWith(`${outer}[`);
  return under(a, b) || under(b, a);
}

/** Replace substituted values that a message would reveal by the `${...}` text they came from. */
function redact(i: ConfigIssue, records: readonly Substitution[]): ConfigIssue {
  let message = i.message;
  for (const r of records) {
    if (r.value.length >= 4 && related(i.path, r.path) && message.includes(r.value)) message = message.split(r.value).join(r.raw);
  }
  return message === i.message ? i : { ...i, message };
}

interface Parsed { locate: Locate | undefined; substitute: (ctx: SubstCtx) => unknown }

// ---------------------------------------------------------------- semantic checks of an invalid config

/** Deletes the node at `path` (an array element becomes a hole, so later indices keep their meaning). */
function removeAt(root: unknown, path: readonly PathSegment[]): unknown {
  let node: unknown = root;
  for (let i = 0; i < path.length - 1; i++) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<string, unknown>)[String(path[i])];
  }
  if (typeof node !== 'object' || node === null) return undefined;
  const key = String(path[path.length - 1]);
  const was = (node as Record<string, unknown>)[key];
  delete (node as Record<string, unknown>)[key];
  return was;
}

const MAX_PRUNE_ROUNDS = 8;

/**
 * A copy of `value` without the nodes the schema refused: each offending node is deleted, and again for
 * what that breaks (a required key now missing deletes its object), until the schema accepts the rest.
 * undefined when the root itself would go or it does not settle.
 */
function pruneInvalid(value: unknown, first: readonly (readonly PathSegment[])[]): { pruned: GatewayConfig; removed: string[]; names: string[] } | undefined {
  let copy: unknown;
  try {
    copy = structuredClone(value);
  } catch {
    return undefined;
  }
  const removed: string[] = [];
  /** names of removed map entries (upstreams.NAME, ...): a reference to one is not "unknown", it is broken */
  const names: string[] = [];
  let paths = first;
  for (let round = 0; round < MAX_PRUNE_ROUNDS; round++) {
    for (const p of paths) {
      if (p.length === 0) return undefined;
      const was = removeAt(copy, p);
      const last = p[p.length - 1];
      if (p.length >= 2 && typeof last === 'string' && isObj(was)) names.push(last);
      removed.push(formatPath(p));
    }
    if (validateSchema(copy)) return { pruned: copy, removed, names };
    // holes left by deleted array elements are reported again ("must be object"): they are known
    paths = ajvErrorsToIssues(validateSchema.errors, copy).map((r) => r.path).filter((p) => !removed.includes(formatPath(p)));
    if (paths.length === 0) return { pruned: copy as GatewayConfig, removed, names };
  }
  return undefined;
}

/** checkSemantics on a value it was not written for: never throws; nothing about the `skip` paths. */
function guardedSemantics(value: unknown, skip: readonly string[], names: readonly string[] = []): SemanticIssue[] {
  let found: SemanticIssue[];
  try {
    found = checkSemantics(value as GatewayConfig);
  } catch {
    return []; // a check tripped over what is left: the schema errors are reported anyway
  }
  const quoted = names.map((n) => JSON.stringify(n));
  return found.filter((s) => !skip.some((p) => related(s.path, p)) && !quoted.some((q) => s.message.includes(q)));
}

function semanticsDespiteSchemaErrors(value: unknown, schemaPaths: readonly (readonly PathSegment[])[], failed: readonly string[]): SemanticIssue[] {
  const p = pruneInvalid(value, schemaPaths);
  // errors only: a warning about what is left ("upstream not used" after a route's reference was pruned)
  // would be noise; warnings come back once the schema errors are fixed
  return p === undefined ? [] : guardedSemantics(p.pruned, [...p.removed, ...failed], p.names).filter((s) => s.severity === 'error');
}

/** Validate an already-built value (no substitution, no positions). Used by `loadConfigText` and tests. */
export function validateConfig(value: unknown, file = '<config>'): LoadResult {
  const deep = tooDeepValue(value);
  if (deep !== undefined) return { ok: false, file, errors: [{ file, path: formatPath(deep), message: depthMessage, severity: 'error' }], warnings: [] };
  return finish(file, { locate: undefined, substitute: () => value }, { env: {}, baseDir: '.', issues: [], records: [], failed: new Set() }, []);
}

function finish(file: string, parsed: Parsed, ctx: SubstCtx, parseWarnings: ConfigIssue[]): LoadResult {
  const value = parsed.substitute(ctx);
  const place = (r: RawIssue): ConfigIssue => ({
    file, path: formatPath(r.path), message: r.message, severity: r.severity, ...parsed.locate?.(r.path, r.at),
  });
  const errors: ConfigIssue[] = [];
  const warnings: ConfigIssue[] = [...parseWarnings];
  for (const r of ctx.issues) (r.severity === 'error' ? errors : warnings).push(place(r));

  const done = (): LoadResult => ({
    ok: false, file,
    errors: sortIssues(errors).map((i) => redact(i, ctx.records)),
    warnings: sortIssues(warnings).map((i) => redact(i, ctx.records)),
  });

  if (value === undefined && errors.length > 0) return done();
  const addSemantic = (list: readonly SemanticIssue[]): void => {
    for (const s of list) (s.severity === 'error' ? errors : warnings).push({ ...s, file, ...parsed.locate?.(parsePath(s.path)) });
  };
  if (!validateSchema(value)) {
    const schemaIssues = ajvErrorsToIssues(validateSchema.errors, value);
    for (const r of schemaIssues) {
      const p = formatPath(r.path);
      if ([...ctx.failed].some((f) => related(p, f) && p.length >= f.length)) continue;
      errors.push(place(r));
    }
    if (errors.length === 0) errors.push({ file, path: '', message: 'configuration is invalid', severity: 'error' });
    // Every error in one round: the semantic checks also run, on a copy without the parts the schema
    // refused, and report nothing about those parts.
    addSemantic(semanticsDespiteSchemaErrors(value, schemaIssues.map((r) => r.path), [...ctx.failed]));
    return done();
  }
  if (errors.length > 0) {
    // substitution failures: the values are still `${...}` text; the checks report nothing about them
    addSemantic(guardedSemantics(value, [...ctx.failed]));
    return done();
  }
  addSemantic(checkSemantics(value));
  if (errors.length > 0) return done();
  // Certificate files: readable, key matches, not expired, cipher policy (the same checks the listener makes).
  value.listeners.forEach((l, i) => {
    if (l.tls === undefined) return;
    const r = checkTlsFiles(l.tls, ctx.baseDir, ['listeners', i, 'tls']);
    for (const p of [...r.errors, ...r.warnings]) {
      (p.severity === 'error' ? errors : warnings).push({ file, path: formatPath(p.path), message: p.message, severity: p.severity, ...parsed.locate?.(p.path) });
    }
  });
  if (errors.length > 0) return done();
  return { ok: true, file, config: value, warnings: sortIssues(warnings).map((i) => redact(i, ctx.records)), ...(ctx.placeheld !== undefined && ctx.placeheld.size > 0 ? { placeholders: [...ctx.placeheld] } : {}) };
}

function single(file: string, message: string, pos?: { line: number; column: number }): LoadResult {
  return { ok: false, file, errors: [{ file, path: '', message, severity: 'error', ...pos }], warnings: [] };
}

/** Synchronous core: parse `text` as the contents of `file` (its extension picks JSON or YAML). */
export function loadConfigText(text: string, file: string, env: NodeJS.ProcessEnv = process.env, options: LoadOptions = {}): LoadResult {
  const src = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  if (src.trim() === '') return single(file, 'configuration file is empty');
  const ctx: SubstCtx = { env, baseDir: dirname(resolve(file)), issues: [], records: [], failed: new Set(),
    ...(options.optionalSecrets !== undefined ? { optional: new Set(options.optionalSecrets), placeheld: new Set<string>() } : {}) };
  const lc = new LineCounter();
  const doc = parseDocument(src, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  // Before anything else: the parser gives up on a very deep document with a stack error of its own, and
  // every later step would overflow. The parse tree is there (up to where the parser stopped): find where.
  const deep = tooDeepYaml(doc);
  if (deep !== undefined) {
    const { line, col } = lc.linePos(deep.offset);
    return { ok: false, file, errors: [{ file, path: formatPath(deep.path), message: depthMessage, severity: 'error', line, column: col }], warnings: [] };
  }
  const yamlIssue = (e: { pos: [number, number]; message: string; code: string }, severity: 'error' | 'warning'): ConfigIssue => {
    const { line, col } = lc.linePos(e.pos[0]);
    const key = e.code === 'DUPLICATE_KEY' ? keyAt(doc, e.pos[0]) : undefined;
    const message = key !== undefined ? `duplicate key ${JSON.stringify(key)}` : (e.message.split('\n')[0] ?? e.message);
    return { file, path: '', message, severity, line, column: col };
  };
  /**
   * Syntax errors with the offending line quoted and indentation hints. One error per line once an
   * indentation error is reported there, and no "follow-on" ones after it (the parser reports a wrong
   * indentation again on the lines that follow, which are right).
   */
  const yamlErrors = (): ConfigIssue[] => {
    const lines = src.split(/\r?\n/);
    const out: ConfigIssue[] = [];
    const indentLines = new Set<number>();
    for (const e of doc.errors) {
      const issue = yamlIssue(e, 'error');
      if (e.code === 'DUPLICATE_KEY' || issue.line === undefined) { out.push(issue); continue; }
      if (indentLines.has(issue.line)) continue;
      const x = explainYamlError(lines, e.code, issue.message, issue.line);
      if (isIndentationError(e.code, issue.message)) {
        if (x.followOn === true && indentLines.size > 0) continue;
        indentLines.add(issue.line);
      }
      out.push({ ...issue, message: x.message, ...(x.column !== undefined ? { column: x.column } : {}) });
    }
    return out;
  };

  if (extname(file).toLowerCase() === '.json') {
    let value: unknown;
    try {
      value = JSON.parse(src);
    } catch (e) {
      const found = jsonSyntaxError(src);
      if (found) return single(file, `invalid JSON: ${found.message}`, offsetToLineCol(src, found.offset));
      const msg = e instanceof Error ? e.message : String(e);
      const pos = /position (\d+)/.exec(msg);
      const clean = (msg.split('\n')[0] ?? msg).replace(/ in JSON at position \d+.*$/s, '');
      return single(file, `invalid JSON: ${clean}`, pos ? offsetToLineCol(src, Number(pos[1])) : undefined);
    }
    // JSON.parse silently keeps the last of duplicate keys; the YAML parser (a JSON superset) finds them.
    const dups = doc.errors.filter((e) => e.code === 'DUPLICATE_KEY');
    if (dups.length > 0) return { ok: false, file, errors: dups.map((e) => yamlIssue(e, 'error')), warnings: [] };
    const locate = doc.errors.length === 0 ? makeLocate(doc, lc) : undefined;
    return finish(file, { locate, substitute: (c) => substituteJs(value, [], c) }, ctx, []);
  }

  if (doc.errors.length > 0) {
    return { ok: false, file, errors: yamlErrors(), warnings: doc.warnings.map((w) => yamlIssue(w, 'warning')) };
  }
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) return single(file, 'configuration file is empty');
  const locate = makeLocate(doc, lc);
  const parsed: Parsed = {
    locate,
    substitute: (c) => {
      substituteYaml(doc.contents, [], c);
      try {
        return doc.toJS({ maxAliasCount: 100 }) as unknown;
      } catch (e) {
        c.issues.push({ path: [], severity: 'error', message: e instanceof Error ? e.message : String(e) });
        return undefined;
      }
    },
  };
  return finish(file, parsed, ctx, doc.warnings.map((w) => yamlIssue(w, 'warning')));
}

/** Read and load a configuration file. Missing, unreadable, directory or empty files give one issue. */
export async function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env, options: LoadOptions = {}): Promise<LoadResult> {
  let text: string;
  try {
    if ((await stat(file)).isDirectory()) return single(file, 'is a directory, not a configuration file');
    text = await readFile(file, 'utf8');
  } catch (e) {
    return single(file, `cannot read configuration file: ${fsReason(e)}`);
  }
  return loadConfigText(text, file, env, options);
}
