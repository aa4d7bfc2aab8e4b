import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { parse as parseYaml } from 'yaml';
import { renderSchema, SCHEMA_FILE } from '../../scripts/gen-schema.js';
import { GatewayConfigSchema } from './schema.js';
import { loadConfigFile } from './load.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MINIMAL = join(ROOT, 'examples', 'minimal.yaml');

function genSchema(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/gen-schema.ts', ...args], { cwd: ROOT, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('published JSON Schema (schema/portcullis.schema.json)', () => {
  it('is up to date with GatewayConfigSchema (run `npm run schema` if this fails)', async () => {
    assert.equal(SCHEMA_FILE, join(ROOT, 'schema', 'portcullis.schema.json'));
    const committed = await readFile(SCHEMA_FILE, 'utf8');
    assert.equal(committed, renderSchema());
    assert.equal(renderSchema(), `${JSON.stringify(GatewayConfigSchema, null, 2)}\n`);
  });

  it('closes every map keyed by a pattern (upstream names, header names)', () => {
    const text = renderSchema();
    const schema: unknown = JSON.parse(text);
    const open: string[] = [];
    const walk = (node: unknown, where: string): void => {
      if (Array.isArray(node)) { node.forEach((n, i) => walk(n, `${where}/${i}`)); return; }
      if (typeof node !== 'object' || node === null) return;
      const rec = node as Record<string, unknown>;
      if (rec.type === 'object' && rec.additionalProperties !== false) open.push(where);
      for (const [k, v] of Object.entries(rec)) walk(v, `${where}/${k}`);
    };
    walk(schema, '#');
    assert.deepEqual(open, []);
  });

  it('compiles on its own with ajv (strict, standard formats) and accepts examples/minimal.yaml', async () => {
    const ajv = new Ajv({ strict: true, allErrors: true });
    // ajv-formats is CommonJS with `exports.default` (see src/config/load.ts)
    const addFormats = (addFormatsModule as unknown as { default: typeof addFormatsModule.default }).default ?? addFormatsModule;
    addFormats(ajv);
    const validate = ajv.compile(JSON.parse(await readFile(SCHEMA_FILE, 'utf8')) as object);
    const minimal: unknown = parseYaml(await readFile(MINIMAL, 'utf8'));
    assert.equal(validate(minimal), true, JSON.stringify(validate.errors));
    assert.equal(validate({ ...(minimal as object), listners: [] }), false);
  });

  describe('scripts/gen-schema.ts', () => {
    let dir = '';
    before(async () => { dir = await mkdtemp(join(tmpdir(), 'portcullis-schema-')); });
    after(async () => { await rm(dir, { recursive: true, force: true }); });

    it('--check passes on the committed file', () => {
      const r = genSchema('--check');
      assert.equal(r.status, 0, r.stderr);
    });

    it('--check fails on a stale or missing file, and writing fixes it', async () => {
      const out = join(dir, 'schema.json');
      await writeFile(out, '{}\n');
      const stale = genSchema('--check', '--out', out);
      assert.equal(stale.status, 1);
      assert.match(stale.stderr, /out of date: run 'npm run schema'/);
      assert.equal(genSchema('--check', '--out', join(dir, 'missing.json')).status, 1);
      assert.equal(genSchema('--out', out).status, 0);
      assert.equal(await readFile(out, 'utf8'), renderSchema());
      assert.equal(genSchema('--check', '--out', out).status, 0);
    });
  });
});

describe('examples/minimal.yaml', () => {
  it('points editors at the schema and loads without errors or warnings', async () => {
    const text = await readFile(MINIMAL, 'utf8');
    assert.equal(text.split('\n')[0], '# yaml-language-server: $schema=../schema/portcullis.schema.json');
    const r = await loadConfigFile(MINIMAL, {});
    assert.ok(r.ok, JSON.stringify(r));
    assert.deepEqual(r.warnings, []);
    assert.deepEqual(r.config.listeners, [{ name: 'http', address: '127.0.0.1', port: 8080 }]);
    assert.equal(r.config.upstreams?.demo?.targets[0]?.url, 'http://127.0.0.1:9000');
    assert.equal(r.config.routes[0]?.upstream, 'demo');
  });
});
