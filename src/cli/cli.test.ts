import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VERSION, readVersion } from '../version.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Run { code: number | null; stdout: string; stderr: string }

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      cwd: ROOT,
      env: { ...process.env, PORTCULLIS_DEBUG: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`timeout: portcullis ${args.join(' ')}`)); }, 60_000);
    child.on('error', reject);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

/** stderr must be one or more plain lines, never a stack trace */
function assertNoStack(r: Run): void {
  assert.doesNotMatch(r.stderr, /^\s+at /m, r.stderr);
  assert.doesNotMatch(r.stderr, /Error:|node:internal/, r.stderr);
}

const VALID = `listeners:
  - name: http
    address: 127.0.0.1
    port: 8080
upstreams:
  demo:
    targets:
      - url: http://127.0.0.1:9000
routes:
  - id: root
    match:
      pathPrefix: /
    upstream: demo
`;

// each case spawns a process (~1 s with tsx): run them side by side
describe('portcullis CLI', { concurrency: 2 }, () => {
  let dir = '';
  const file = (name: string): string => join(dir, name);
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'portcullis-cli-')); });
  after(async () => { await rm(dir, { recursive: true, force: true }); });

  describe('validate', () => {
    it('accepts a valid file and summarises it', async () => {
      const r = await cli(['validate', '-c', 'examples/minimal.yaml']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'ok: examples/minimal.yaml (1 routes, 1 upstreams, 1 listeners)\n');
      assert.equal(r.stderr, '');
    });

    it('accepts --config as well as -c, and --config=FILE', async () => {
      assert.equal((await cli(['validate', '--config', 'examples/minimal.yaml'])).code, 0);
      assert.equal((await cli(['validate', '--config=examples/minimal.yaml'])).code, 0);
    });

    it('lists every error with file:line:col and path, and exits 1', async () => {
      const f = file('bad.yaml');
      await writeFile(f, [
        'listeners:', //             1
        '  - name: http', //         2
        '    port: 70000', //        3
        'routes:', //                4
        '  - id: a', //              5
        '    match:', //             6
        '      path: api', //        7
        '    respond:', //           8
        '      status: 99', //       9
        '',
      ].join('\n'));
      const r = await cli(['validate', '-c', f]);
      assert.equal(r.code, 1);
      assert.equal(r.stdout, '');
      assert.deepEqual(r.stderr.trimEnd().split('\n'), [
        `${f}:3:11: listeners[0].port: must be <= 65535`,
        `${f}:7:13: routes[0].match.path: must match pattern "^/"`,
        `${f}:9:15: routes[0].respond.status: must be >= 200`,
        `${f}: 3 errors`,
      ]);
    });

    it('suggests the intended key for a typo', async () => {
      const f = file('typo.yaml');
      await writeFile(f, VALID.replace('      pathPrefix: /', '      pathPrefx: /'));
      const r = await cli(['validate', '-c', f]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:12:7: routes\\[0\\]\\.match\\.pathPrefx: unknown key "pathPrefx"; did you mean "pathPrefix"\\?$`, 'm'));
    });

    it('reports semantic errors and prints warnings', async () => {
      const f = file('semantic.yaml');
      await writeFile(f, `server:\n  status:\n    address: 0.0.0.0\n${VALID.replace('upstream: demo', 'upstream: dmeo')}`);
      const r = await cli(['validate', '-c', f]);
      assert.equal(r.code, 1);
      const lines = r.stderr.trimEnd().split('\n');
      assert.ok(lines.includes(`${f}:16:15: routes[0].upstream: unknown upstream "dmeo"; did you mean "demo"?`), r.stderr);
      assert.ok(lines.some((l) => l.startsWith(`warning: ${f}:3:14: server.status.address: `)), r.stderr);
      assert.equal(lines.at(-1), `${f}: 1 error, 2 warnings`);
    });

    it('exits 0 with warnings only', async () => {
      const f = file('warn.yaml');
      await writeFile(f, `server:\n  status:\n    address: 0.0.0.0\n${VALID}`);
      const r = await cli(['validate', '-c', f]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /^warning: .*status listener exposed/);
      assert.match(r.stdout, /^ok: /);
    });

    it('substitutes environment variables, and names a missing one', async () => {
      const f = file('env.yaml');
      await writeFile(f, VALID.replace('port: 8080', 'port: ${GW_PORT}'));
      const missing = await cli(['validate', '-c', f], { GW_PORT: undefined });
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /:4:11: listeners\[0\]\.port: environment variable "GW_PORT" is not set/);
      const set = await cli(['validate', '-c', f], { GW_PORT: '8088' });
      assert.equal(set.code, 0, set.stderr);
    });

    it('reads ${file:...} relative to the config file', async () => {
      const f = file('withfile.yaml');
      await writeFile(file('token.txt'), 's3cret\n');
      await writeFile(f, VALID.replace('    upstream: demo\n', '    upstream: demo\n    requestHeaders:\n      set:\n        X-Token: ${file:token.txt}\n'));
      const ok = await cli(['validate', '-c', f]);
      assert.equal(ok.code, 0, ok.stderr);
      await writeFile(f, VALID.replace('    upstream: demo\n', '    upstream: demo\n    requestHeaders:\n      set:\n        X-Token: ${file:nope.txt}\n'));
      const bad = await cli(['validate', '-c', f]);
      assert.equal(bad.code, 1);
      assert.ok(bad.stderr.includes(`${f}:16:18: routes[0].requestHeaders.set["X-Token"]: cannot read "${file('nope.txt')}"`), bad.stderr);
    });

    it('reports a YAML syntax error without a stack trace', async () => {
      const f = file('syntax.yaml');
      await writeFile(f, 'listeners: [\n');
      const r = await cli(['validate', '-c', f]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:\\d+:\\d+: `));
      assertNoStack(r);
    });

    it('reports an empty file as invalid (exit 1)', async () => {
      const f = file('empty.yaml');
      await writeFile(f, '');
      const r = await cli(['validate', '-c', f]);
      assert.equal(r.code, 1);
      assert.equal(r.stderr, `${f}: configuration file is empty\n${f}: 1 error\n`);
    });
  });

  describe('usage errors (exit 2, one line, no stack)', () => {
    const cases: [string[], string][] = [
      [['start', '--foo'], "portcullis: unknown option '--foo' (see 'portcullis start --help')"],
      [['validate', '-c'], "portcullis: option '--config' needs a value (see 'portcullis validate --help')"],
      [['validate'], "portcullis: missing required option '-c, --config FILE' (see 'portcullis validate --help')"],
      [['validate', '-c', 'does/not/exist.yaml'], "portcullis: config file not found: does/not/exist.yaml (see 'portcullis validate --help')"],
      [['start', '-c', 'does/not/exist.yaml'], "portcullis: config file not found: does/not/exist.yaml (see 'portcullis start --help')"],
      [['validate', '-c', 'src'], "portcullis: config file is a directory: src (see 'portcullis validate --help')"],
      [['validate', '-c', 'a.yaml', '-c', 'b.yaml'], "portcullis: option '--config' given more than once (see 'portcullis validate --help')"],
      [['validate', '-c', 'examples/minimal.yaml', 'extra'], "portcullis: unexpected argument 'extra' (see 'portcullis validate --help')"],
      [['strat'], "portcullis: unknown command 'strat'; did you mean 'start'? (see 'portcullis --help')"],
      [['--bogus'], "portcullis: unknown option '--bogus' (see 'portcullis --help')"],
      [[], "portcullis: missing command (see 'portcullis --help')"],
    ];
    for (const [args, line] of cases) {
      it(`portcullis ${args.join(' ')}`, async () => {
        const r = await cli(args);
        assert.equal(r.code, 2);
        assert.equal(r.stderr, `${line}\n`);
        assert.equal(r.stdout, '');
        assertNoStack(r);
      });
    }
  });

  describe('start', () => {
    it('prints every error and exits 1 for an invalid config (before loading the runtime)', async () => {
      const f = file('start-bad.yaml');
      await writeFile(f, VALID.replace('port: 8080', 'port: http').replace('upstream: demo', 'upstream: 5'));
      const r = await cli(['start', '-c', f]);
      assert.equal(r.code, 1);
      assert.deepEqual(r.stderr.trimEnd().split('\n'), [
        `${f}:4:11: listeners[0].port: must be an integer`,
        `${f}:13:15: routes[0].upstream: must be a string`,
      ]);
    });
  });

  describe('version and help', () => {
    it('prints the package version', async () => {
      const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
      assert.equal(VERSION, pkg.version);
      for (const args of [['version'], ['--version']]) {
        const r = await cli(args);
        assert.equal(r.code, 0);
        assert.equal(r.stdout, `portcullis ${pkg.version}\n`);
      }
    });

    it('falls back when package.json cannot be read', () => {
      assert.equal(readVersion(new URL('file:///nonexistent/package.json')), '0.0.0-unknown');
    });

    it('shows global help', async () => {
      for (const args of [['--help'], ['-h'], ['help']]) {
        const r = await cli(args);
        assert.equal(r.code, 0, args.join(' '));
        assert.match(r.stdout, /^Usage: portcullis <command> \[options\]/);
        for (const c of ['start', 'validate', 'version', 'help']) assert.match(r.stdout, new RegExp(`^  ${c} `, 'm'));
      }
    });

    it('shows help for each command', async () => {
      for (const args of [['start', '--help'], ['validate', '-h'], ['help', 'start'], ['start', '-c', 'x.yaml', '--help']]) {
        const r = await cli(args);
        assert.equal(r.code, 0, args.join(' '));
        const name = args[0] === 'help' ? args[1] : args[0];
        assert.match(r.stdout, new RegExp(`^Usage: portcullis ${name} -c FILE\\n`), r.stdout);
        assert.match(r.stdout, /-c, --config FILE {3}Configuration file/);
      }
    });
  });
});
