// Exit codes as README.md states them, for the cases a first-time user meets (kept out of cli.test.ts,
// whose process spawns already take most of a file's time budget on a small machine).
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Run { code: number | null; stdout: string; stderr: string }

function cli(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

it('README states the exit codes the CLI uses for a missing config file', async () => {
  const readme = (await readFile(join(ROOT, 'README.md'), 'utf8')).replace(/\s+/g, ' ');
  assert.match(readme, /Exit codes: 0 ok, 1 invalid configuration or runtime failure, 2 usage error: a wrong command line, which includes a `-c FILE` that does not exist/);
  const missing = await cli(['validate', '-c', 'does/not/exist.yaml']);
  assert.equal(missing.code, 2);
  const keys = await cli(['keys', 'list', '-c', 'does/not/exist.yaml']);
  assert.equal(keys.code, 2, keys.stderr);
  assert.match(keys.stderr, /config file not found: does\/not\/exist\.yaml/);
});

