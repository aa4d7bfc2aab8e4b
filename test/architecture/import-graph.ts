// A small import-graph reader for the architecture test (test/architecture/imports.test.ts). It reads
// import/export specifiers with regular expressions, which is enough for this code base: every module
// uses ESM `import … from '…'` / `export … from '…'` with relative './x.js' specifiers, plus a few
// dynamic `import('…')` calls.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

export interface ImportEdge {
  /** importing file, relative to the repository root with '/' separators (e.g. 'src/state/memory.ts') */
  readonly from: string;
  /** imported file (resolved .js → .ts), same form; only relative specifiers are resolved */
  readonly to: string;
  readonly specifier: string;
  /**
   * 'value'   — evaluated at load time (a static import/export that is not type-only). Under
   *             verbatimModuleSyntax `import { type A } from './x.js'` still emits `import './x.js'`, so
   *             an import whose braces hold only inline `type` names counts as a value import too.
   * 'type'    — `import type …` / `export type …`: erased by the compiler.
   * 'dynamic' — `await import('…')`: loaded lazily, so it cannot close a load-time cycle.
   */
  readonly kind: 'value' | 'type' | 'dynamic';
}

const STATIC = /(?:^|[\n;])[ \t]*(import|export)\s+(type\s+)?((?:[\w$*{},\s]|\bas\b)*?)\s*from\s*['"]([^'"\n]+)['"]/g;
const SIDE_EFFECT = /(?:^|[\n;])[ \t]*import\s*['"]([^'"\n]+)['"]/g;
const DYNAMIC = /\bimport\(\s*['"]([^'"\n]+)['"]\s*\)/g;

/** Drops comments so commented-out imports and 'import' in prose are not read (strings are left alone). */
function stripComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, (m) => m.replace(/[^\n]/g, ' ')).replace(/(^|[^:'"`\\])\/\/[^\n]*/g, '$1');
}

/** Import edges of one module's source text; `from` is its path. Unresolved (package) specifiers are skipped. */
export function importsOf(from: string, text: string, exists: (p: string) => boolean): ImportEdge[] {
  const src = stripComments(text);
  const out: ImportEdge[] = [];
  const add = (specifier: string, kind: ImportEdge['kind']) => {
    if (!specifier.startsWith('.')) return;
    const to = resolveSpecifier(from, specifier, exists);
    if (to !== undefined) out.push({ from, to, specifier, kind });
  };
  for (const m of src.matchAll(STATIC)) add(m[4]!, m[2] !== undefined ? 'type' : 'value');
  for (const m of src.matchAll(SIDE_EFFECT)) add(m[1]!, 'value');
  for (const m of src.matchAll(DYNAMIC)) add(m[1]!, 'dynamic');
  return out;
}

function resolveSpecifier(from: string, spec: string, exists: (p: string) => boolean): string | undefined {
  const base = join(dirname(from), spec).split(sep).join('/');
  const candidates = [base.replace(/\.js$/, '.ts'), base.replace(/\.mjs$/, '.mts'), base, `${base}.ts`, `${base}/index.ts`];
  return candidates.find(exists);
}

/** Every non-test .ts file under `dir` (repository-relative), and the edges among them. */
export function readGraph(root: string, dir = 'src'): { files: string[]; edges: ImportEdge[] } {
  const files: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(join(root, d))) {
      const p = `${d}/${name}`;
      if (statSync(join(root, p)).isDirectory()) walk(p);
      else if (name.endsWith('.ts') && !name.endsWith('.test.ts') && !name.endsWith('.d.ts')) files.push(p);
    }
  };
  walk(dir);
  files.sort();
  const known = new Set(files);
  const exists = (p: string) => known.has(p);
  const edges = files.flatMap((f) => importsOf(f, readFileSync(join(root, f), 'utf8'), exists));
  return { files, edges };
}

/**
 * Strongly connected components with more than one member, or a self-import (Tarjan). Each is returned
 * with one concrete cycle through it (a path a → b → … → a) for the failure message.
 */
export function findCycles(nodes: readonly string[], edges: ReadonlyArray<{ from: string; to: string }>): string[][] {
  const adj = new Map<string, string[]>();
  for (const n of nodes) adj.set(n, []);
  for (const e of edges) {
    if (!adj.has(e.from)) adj.set(e.from, []);
    if (!adj.has(e.to)) adj.set(e.to, []);
    adj.get(e.from)!.push(e.to);
  }
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const sccs: string[][] = [];
  // iterative Tarjan: no recursion depth limit on long chains
  for (const start of adj.keys()) {
    if (index.has(start)) continue;
    const work: Array<{ v: string; i: number }> = [{ v: start, i: 0 }];
    index.set(start, counter); low.set(start, counter); counter++;
    stack.push(start); onStack.add(start);
    while (work.length > 0) {
      const top = work[work.length - 1]!;
      const next = adj.get(top.v)!;
      if (top.i < next.length) {
        const w = next[top.i++]!;
        if (!index.has(w)) {
          index.set(w, counter); low.set(w, counter); counter++;
          stack.push(w); onStack.add(w);
          work.push({ v: w, i: 0 });
        } else if (onStack.has(w)) {
          low.set(top.v, Math.min(low.get(top.v)!, index.get(w)!));
        }
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1]!.v;
        low.set(parent, Math.min(low.get(parent)!, low.get(top.v)!));
      }
      if (low.get(top.v) === index.get(top.v)) {
        const scc: string[] = [];
        let w: string;
        do { w = stack.pop()!; onStack.delete(w); scc.push(w); } while (w !== top.v);
        if (scc.length > 1 || adj.get(top.v)!.includes(top.v)) sccs.push(scc.sort());
      }
    }
  }
  return sccs.map((scc) => cycleThrough(scc, adj)).sort((a, b) => a[0]!.localeCompare(b[0]!));
}

/** A shortest cycle from the component's first member back to itself, staying inside the component (BFS). */
function cycleThrough(scc: string[], adj: Map<string, string[]>): string[] {
  const inside = new Set(scc);
  const start = scc[0]!;
  const prev = new Map<string, string>();
  const queue = [start];
  for (let k = 0; k < queue.length; k++) {
    const v = queue[k]!;
    for (const w of adj.get(v)!) {
      if (!inside.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let x: string | undefined = v; x !== undefined && x !== start; x = prev.get(x)) path.splice(1, 0, x);
        path.push(start);
        return path;
      }
      if (!prev.has(w)) { prev.set(w, v); queue.push(w); }
    }
  }
  return [start, start];
}

export const repoRoot = resolve(dirname(new URL(import.meta.url).pathname), '../..');
export const rel = (p: string) => relative(repoRoot, p).split(sep).join('/');
