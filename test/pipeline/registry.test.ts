// The stage contract (src/pipeline/types.ts): every registered stage has a unique name, order and config
// key, an object schema that the route schema (and, for a global block, the top-level schema) includes,
// a semantic check, a documentation page that names its key, a valid upgrade policy and at least one
// test that mentions it. Also: docs/pipeline.md lists the phases before routing in their order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { STAGES } from '../../src/pipeline/registry.js';
import { PRE_ROUTING_PHASES } from '../../src/server/phases.js';
import { RouteSchema, GatewayConfigSchema, type GatewayConfig } from '../../src/config/schema.js';
import type { AnyStageModule } from '../../src/pipeline/types.js';
import { testStage } from '../helpers/stages.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const SELF = relative(ROOT, new URL(import.meta.url).pathname);

function walk(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}

const stageSources = walk(join(ROOT, 'src/stages')).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));
const testFiles = [...walk(join(ROOT, 'test')), ...walk(join(ROOT, 'src'))]
  .filter((f) => f.endsWith('.test.ts') && relative(ROOT, f) !== SELF)
  .map((f) => ({ path: relative(ROOT, f), text: readFileSync(f, 'utf8') }));

/** The stage's folder: the src/stages/<folder> whose sources declare `name: '<name>'`. */
function folderOf(m: AnyStageModule): string | undefined {
  const decl = new RegExp(`name:\\s*['"]${m.name.replace(/[-/\\^$*+?.()|[\]{}]/g, '\\$&')}['"]`);
  const f = stageSources.find((s) => decl.test(readFileSync(s, 'utf8')));
  return f === undefined ? undefined : relative(join(ROOT, 'src/stages'), f).split('/')[0];
}

const MINIMAL: GatewayConfig = {
  listeners: [{ name: 'main', address: '127.0.0.1', port: 0 }],
  routes: [{ id: 'r', match: { pathPrefix: '/' }, respond: { status: 200 } }],
};

/** Every way the given modules break the contract, one sentence each (empty = all good). */
function contractViolations(stages: readonly AnyStageModule[]): string[] {
  const out: string[] = [];
  const seen = { name: new Map<string, string>(), order: new Map<number, string>(), configKey: new Map<string, string>() };
  const routeProps = (RouteSchema as unknown as { properties: Record<string, unknown> }).properties;
  const topProps = (GatewayConfigSchema as unknown as { properties: Record<string, unknown> }).properties;
  for (const m of stages) {
    const who = `stage ${m.name}`;
    for (const k of ['name', 'order', 'configKey'] as const) {
      const v = m[k] as never;
      const prev = (seen[k] as Map<unknown, string>).get(v);
      if (prev !== undefined) out.push(`${who}: ${k} ${String(v)} already used by ${prev}`);
      (seen[k] as Map<unknown, string>).set(v, m.name);
    }
    if (!/^[a-z][a-z0-9]*(-[a-z0-9]+)*$/.test(m.name)) out.push(`${who}: name is not kebab-case`);
    if (!Number.isFinite(m.order)) out.push(`${who}: order is not a number`);
    const schema = m.schema as { type?: unknown };
    if (schema === null || typeof schema !== 'object' || schema.type !== 'object') out.push(`${who}: schema is not an object schema`);
    if (typeof m.check !== 'function') out.push(`${who}: check is not a function`);
    else {
      try {
        const issues = m.check(MINIMAL);
        if (!Array.isArray(issues)) out.push(`${who}: check did not return an array`);
      } catch (err) {
        out.push(`${who}: check threw on a minimal config (${(err as Error).message})`);
      }
    }
    if (typeof m.compile !== 'function') out.push(`${who}: compile is not a function`);
    if (!['run', 'skip', 'incompatible'].includes(m.upgrades)) out.push(`${who}: upgrades is ${String(m.upgrades)}`);
    const docs = join(ROOT, m.docs ?? '');
    if (typeof m.docs !== 'string' || m.docs === '' || !existsSync(docs) || !statSync(docs).isFile()) out.push(`${who}: docs file ${String(m.docs)} does not exist`);
    else if (!readFileSync(docs, 'utf8').includes(m.configKey)) out.push(`${who}: ${m.docs} does not mention "${m.configKey}"`);
    if (!(m.configKey in routeProps)) out.push(`${who}: RouteSchema has no property ${m.configKey}`);
    if (m.global !== undefined && !(m.global.key in topProps)) out.push(`${who}: GatewayConfigSchema has no property ${m.global.key}`);
    const folder = folderOf(m);
    if (folder === undefined) out.push(`${who}: no folder under src/stages declares it`);
    const mentions = (t: string) => t.includes(m.name) || t.includes(m.configKey);
    const tested = testFiles.some((f) => (folder !== undefined && f.path.startsWith(`src/stages/${folder}/`)) || (f.path.startsWith('test/') && mentions(f.text)));
    if (!tested) out.push(`${who}: no test file under src/stages/${folder ?? '?'}/ or test/ mentions "${m.name}" or "${m.configKey}"`);
  }
  return out;
}

test('every registered stage keeps the stage contract', () => {
  assert.ok(STAGES.length >= 10, `only ${STAGES.length} stages registered`);
  assert.deepEqual(contractViolations(STAGES), []);
});

test('the contract check catches a stage that breaks it', () => {
  const bad: AnyStageModule = {
    ...testStage({ name: 'Not Kebab', order: STAGES[0]!.order, configKey: 'notARouteKey', compile: () => null }),
    docs: 'docs/no-such-page.md',
    upgrades: 'sometimes' as never,
    check: () => undefined as never,
    global: { key: 'notATopLevelKey', schema: STAGES[0]!.schema },
  };
  const v = contractViolations([...STAGES, bad]).join('\n');
  for (const expected of ['order', 'kebab-case', 'check did not return an array', 'upgrades is sometimes', 'docs file', 'RouteSchema has no property notARouteKey', 'GatewayConfigSchema has no property notATopLevelKey', 'no folder', 'no test file']) {
    assert.ok(v.includes(expected), `not reported: ${expected}\n${v}`);
  }
  const dup = contractViolations([...STAGES, { ...STAGES[1]!, order: 9999 }]).join('\n');
  assert.match(dup, /name .* already used/);
  assert.match(dup, /configKey .* already used/);
});

test('docs/pipeline.md lists the phases before routing, in PRE_ROUTING_PHASES order', () => {
  const doc = readFileSync(join(ROOT, 'docs/pipeline.md'), 'utf8');
  let at = 0;
  const missing: string[] = [];
  for (const p of PRE_ROUTING_PHASES) {
    // the name as a word (e.g. `route` must not be found inside `route-stages`)
    const re = new RegExp(`(^|[^a-z-])${p.name}($|[^a-z-])`, 'g');
    re.lastIndex = at;
    const m = re.exec(doc);
    if (m === null) { missing.push(p.name); continue; }
    at = m.index + m[0].length;
  }
  assert.deepEqual(missing, [], `docs/pipeline.md does not list these phases in order after the previous ones: ${missing.join(', ')}`);
});
