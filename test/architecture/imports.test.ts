// Dependencies point down (issue "Renovate the pipeline", item 7). Reads the import graph of src/ and
// asserts the layering and the absence of import cycles. A new violation fails; the known ones that sit
// in files being rewritten are listed, with the reason, in the ALLOWLISTs below — delete an entry when its
// file is fixed (the test also fails on an entry that no longer matches anything, so the list cannot rot).
//
// Layers (a file's layer is decided by its path; every file under src/ must have one):
//   foundation    src/net, src/config (minus the aggregators), src/identity, src/state, src/services,
//                 src/observability, src/tls, src/upstream, src/routing, src/body, src/version.ts
//   aggregator    src/config/schema.ts, src/config/semantic.ts: they assemble the per-stage config schemas and
//                 semantic checks, so they may import src/stages/ (until the stage registry does it)
//   stages        src/stages/
//   orchestration src/index.ts (the public API), src/pipeline, src/gateway, src/server, src/proxy, src/status, src/cli
// Rules:
//   1. only stages, aggregators and orchestration import src/stages/
//   2. foundations do not import orchestration
//   3. foundations import the aggregators only type-only (config/load.ts, the loader, excepted): a value
//      import would pull in every stage
//   4. no import cycles. Type-only imports count for the layering rules (a type names the concept it depends
//      on) and for cycles too (a type-only ring, like the old one around config/semantic.ts, is still two
//      modules that cannot be understood apart); dynamic import('…') counts for layering, not for cycles
//      (it is loaded lazily). A cycle of value imports can never be allowlisted.
import test from 'node:test';
import assert from 'node:assert/strict';
import { findCycles, importsOf, readGraph, repoRoot, type ImportEdge } from './import-graph.js';

type Layer = 'foundation' | 'aggregator' | 'stages' | 'orchestration';

const AGGREGATORS = new Set(['src/config/schema.ts', 'src/config/semantic.ts']);
const FOUNDATIONS = ['src/net/', 'src/config/', 'src/identity/', 'src/state/', 'src/services/', 'src/observability/', 'src/tls/', 'src/upstream/', 'src/routing/', 'src/body/', 'src/version.ts'];
const ORCHESTRATION = ['src/index.ts', 'src/pipeline/', 'src/gateway/', 'src/server/', 'src/proxy/', 'src/status/', 'src/cli/'];
/** foundations that may value-import an aggregator */
const AGGREGATOR_USERS = new Set(['src/config/load.ts']);

function layerOf(file: string): Layer | undefined {
  if (AGGREGATORS.has(file)) return 'aggregator';
  if (file.startsWith('src/stages/')) return 'stages';
  if (FOUNDATIONS.some((p) => file.startsWith(p))) return 'foundation';
  if (ORCHESTRATION.some((p) => file.startsWith(p))) return 'orchestration';
  return undefined;
}

/**
 * Known layering violations, as 'from -> to'. Each must still exist (a fixed one must be removed here).
 */
const LAYER_ALLOWLIST = new Map<string, string>([
  // requestHtu()/dpopProofHeader() take the whole RequestContext and use pipeline/header-list's
  // singleHeaderValue. Fix: pass the few request fields they read, and move header-list.ts (a leaf
  // utility) to src/net/, or move the two helpers into the authentication stage.
  ['src/identity/dpop/dpop.ts -> src/pipeline/context.ts', 'DPoP request helpers take RequestContext'],
  ['src/identity/dpop/dpop.ts -> src/pipeline/header-list.ts', 'DPoP request helpers use header-list'],
]);

/**
 * Known cycles that include a type-only import, by their sorted members joined with ' | '. Value cycles
 * cannot be listed here.
 */
const CYCLE_ALLOWLIST = new Map<string, string>([
  // RequestContext (pipeline/context.ts) holds its generation and route (GatewayRuntime, CompiledRoute from
  // gateway/runtime.ts), and the runtime names handler types that take a RequestContext (its rewritePath,
  // pipeline/types.ts, the access logger, the plaintext policy, the response writer). Type-only. Fix: give
  // RequestContext its own narrow view of the runtime/route (or define those types in src/pipeline next to it).
  ['src/gateway/runtime.ts | src/pipeline/context.ts | src/pipeline/types.ts | src/server/access-log.ts | src/server/respond.ts | src/server/transport-security/plaintext.ts', 'type-only: context ↔ runtime'],
]);

const graph = readGraph(repoRoot);
const fmt = (e: ImportEdge) => `${e.from} -> ${e.to}`;

test('every file under src/ belongs to a layer', () => {
  const loose = graph.files.filter((f) => layerOf(f) === undefined);
  assert.deepEqual(loose, [], `add these files' folders to a layer in ${import.meta.url}`);
});

test('the reader sees the imports (sanity: the graph is not empty, a known edge is there)', () => {
  assert.ok(graph.files.length > 50);
  assert.ok(graph.edges.some((e) => e.from === 'src/state/memory.ts' && e.to === 'src/state/rate-algorithms.ts' && e.kind === 'value'));
  assert.ok(graph.edges.some((e) => e.kind === 'type'));
});

test('dependencies point down: no new upward import', () => {
  const bad: string[] = [];
  const seen = new Set<string>();
  for (const e of graph.edges) {
    const a = layerOf(e.from), b = layerOf(e.to);
    let why: string | undefined;
    if (b === 'stages' && a === 'foundation') why = 'only stages, the config aggregators and orchestration may import src/stages/';
    else if (a === 'foundation' && b === 'orchestration') why = 'a foundation imports orchestration';
    else if (a === 'foundation' && b === 'aggregator' && e.kind !== 'type' && !AGGREGATOR_USERS.has(e.from)) why = 'a foundation value-imports a config aggregator (it pulls in every stage); import from config/issues.ts or the module that owns it';
    if (why === undefined) continue;
    const k = fmt(e);
    seen.add(k);
    if (!LAYER_ALLOWLIST.has(k)) bad.push(`${k} (${e.kind}): ${why}`);
  }
  assert.deepEqual(bad, [], `upward imports:\n  ${bad.join('\n  ')}`);
  const stale = [...LAYER_ALLOWLIST.keys()].filter((k) => !seen.has(k));
  assert.deepEqual(stale, [], 'LAYER_ALLOWLIST entries that no longer occur: delete them');
});

test('no import cycles among value imports (never allowlisted)', () => {
  const cycles = findCycles(graph.files, graph.edges.filter((e) => e.kind === 'value'));
  assert.deepEqual(cycles.map((c) => c.join(' -> ')), []);
});

// Type-only imports of src/config/schema.ts are left out here: the config types (RouteConfig, GatewayConfig)
// are derived from the stage registry by design (a stage's block type comes from its own schema, and the
// aggregate type from the registry), so every stage that names RouteConfig closes a type-only loop through
// the aggregator. It is erased at compile time; value imports of the aggregator still count.
const staticEdges = graph.edges.filter((e) => e.kind !== 'dynamic' && !(e.kind === 'type' && e.to === 'src/config/schema.ts'));

test('no import cycles among static imports, type-only included', () => {
  const sccs = findCycles(graph.files, staticEdges);
  const keyOf = (cycle: string[]) => [...new Set(cycle)].sort().join(' | ');
  // the allowlist names a component by its members; report a grown component as new
  const members = sccMembers(graph.files, staticEdges);
  const bad = sccs.filter((c) => !CYCLE_ALLOWLIST.has(members.get(c[0]!) ?? keyOf(c)));
  assert.deepEqual(bad.map((c) => `${c.join(' -> ')}   (component: ${members.get(c[0]!)})`), [], 'import cycles');
  const found = new Set(sccs.map((c) => members.get(c[0]!)));
  const stale = [...CYCLE_ALLOWLIST.keys()].filter((k) => !found.has(k));
  assert.deepEqual(stale, [], 'CYCLE_ALLOWLIST entries that no longer occur: delete them');
});

/** file → its strongly connected component's members, sorted and joined (files in a cycle only). */
function sccMembers(files: readonly string[], edges: readonly ImportEdge[]): Map<string, string> {
  const reach = new Map<string, Set<string>>();
  const adj = new Map<string, string[]>();
  for (const e of edges) { if (!adj.has(e.from)) adj.set(e.from, []); adj.get(e.from)!.push(e.to); }
  const from = (s: string) => {
    let r = reach.get(s);
    if (r !== undefined) return r;
    r = new Set<string>();
    const stack = [s];
    while (stack.length > 0) for (const w of adj.get(stack.pop()!) ?? []) if (!r.has(w)) { r.add(w); stack.push(w); }
    reach.set(s, r);
    return r;
  };
  const out = new Map<string, string>();
  for (const c of findCycles(files, edges)) {
    const start = c[0]!;
    const m = [...from(start)].filter((x) => x === start || from(x).has(start)).sort();
    for (const x of m) out.set(x, m.join(' | '));
  }
  return out;
}

// --- self-checks: the reader and the cycle detector on synthetic input ---

test('self-check: the cycle detector finds a synthetic cycle and reports its path', () => {
  const nodes = ['a', 'b', 'c', 'd', 'e'];
  const edges = [{ from: 'a', to: 'b' }, { from: 'b', to: 'c' }, { from: 'c', to: 'a' }, { from: 'c', to: 'd' }, { from: 'e', to: 'e' }];
  assert.deepEqual(findCycles(nodes, edges), [['a', 'b', 'c', 'a'], ['e', 'e']]);
  assert.deepEqual(findCycles(nodes, [{ from: 'a', to: 'b' }, { from: 'b', to: 'c' }, { from: 'a', to: 'c' }]), []);
});

test('self-check: the reader classifies value, type-only, inline-type, re-export, side-effect and dynamic imports', () => {
  const have = new Set(['src/x/a.ts', 'src/x/b.ts', 'src/x/c.ts', 'src/x/d.ts', 'src/x/e.ts', 'src/y/index.ts', 'src/x/f.ts', 'src/x/g.ts']);
  const text = [
    "import { a } from './a.js';",
    "import type { B } from './b.js';",
    "import {\n  type C,\n} from './c.js';            // emitted as import './c.js' under verbatimModuleSyntax",
    "export { d } from './d.js';",
    "export type { E } from './e.js';",
    "import '../y/index.js';",
    "const g = await import('./g.js');",
    "// import { f } from './f.js';",
    "import ipaddr from 'ipaddr.js';",
  ].join('\n');
  const got = importsOf('src/x/m.ts', text, (p) => have.has(p)).map((e) => `${e.kind} ${e.to}`).sort();
  assert.deepEqual(got, ['dynamic src/x/g.ts', 'type src/x/b.ts', 'type src/x/e.ts', 'value src/x/a.ts', 'value src/x/c.ts', 'value src/x/d.ts', 'value src/y/index.ts']);
});
