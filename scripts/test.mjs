#!/usr/bin/env node
// Runs the whole suite with Node's built-in test runner on the TypeScript sources (via tsx).
// Node 20's `--test` does not expand globs, so the test files are listed here.
// Usage: npm test [-- <path filter>...]   e.g. npm test -- routing
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const filters = process.argv.slice(2);
const files = [];
const walk = (dir) => {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.ts')) files.push(relative(root, p));
  }
};
for (const d of ['src', 'test']) { try { walk(join(root, d)); } catch { /* folder may not exist */ } }
const selected = files.filter((f) => filters.length === 0 || filters.some((x) => f.includes(x))).sort();
if (selected.length === 0) { console.error('no test files matched'); process.exit(1); }
// --test-timeout bounds each test and, with one process per file, each whole file (Node 20). It is a
// last resort against hangs, not a performance budget: on a machine whose cores are busy a cluster
// gateway can take 30+ s to start. PORTCULLIS_TEST_TIMEOUT_SCALE multiplies it (and the helpers' waits).
const scale = Number(process.env.PORTCULLIS_TEST_TIMEOUT_SCALE ?? '1');
const timeout = Math.round(300_000 * (Number.isFinite(scale) && scale > 0 ? scale : 1));
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', `--test-timeout=${timeout}`, ...selected], {
  cwd: root, stdio: 'inherit', env: { ...process.env, PORTCULLIS_TEST: '1' },
});
process.exit(r.status ?? 1);
