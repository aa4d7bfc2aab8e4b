// `npm start` (scripts/quickstart.mjs) runs the demo upstream and a gateway; however it is stopped,
// neither child (nor the gateway's cluster worker) is left running. Runs the script on src/ through tsx
// (PORTCULLIS_QUICKSTART_FROM_SRC=1: no build needed) and on a copy of examples/quickstart.yaml with
// free ports. The four ways to stop it run concurrently.
// Whether the gateway drains is not asserted: the test cannot tell when the gateway's cluster primary has
// installed its signal handlers (after every worker is ready; a signal just before that ends the primary
// at once and its workers stop when their IPC channel closes), and either way nothing may be left.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { spawnTracked } from '../helpers/process.js';
import { closedPort } from '../helpers/servers.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Proc { pid: number; ppid: number; pgid: number; stat: string }

function processes(): Proc[] {
  return execFileSync('ps', ['-eo', 'pid=,ppid=,pgid=,stat='], { encoding: 'utf8' }).trim().split('\n').map((l) => {
    const [pid, ppid, pgid, stat] = l.trim().split(/\s+/);
    return { pid: Number(pid), ppid: Number(ppid), pgid: Number(pgid), stat: stat ?? '' };
  });
}

/** Live (not zombie) processes in any of `groups`. */
function liveIn(groups: readonly number[]): Proc[] {
  return processes().filter((p) => groups.includes(p.pgid) && !p.stat.startsWith('Z'));
}

interface Quickstart { child: ChildProcess; port: number; stderr: () => string; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> }

async function startQuickstart(t: { after(fn: () => unknown): void }): Promise<Quickstart & { groups: number[] }> {
  const [port, statusPort, demoPort] = [await closedPort(), await closedPort(), await closedPort()];
  const dir = tempDir('portcullis-quickstart-', t);
  const file = join(dir, 'quickstart.yaml');
  const original = readFileSync(join(ROOT, 'examples/quickstart.yaml'), 'utf8');
  const yaml = original.replace('port: 8080', `port: ${port}`).replace('port: 9901', `port: ${statusPort}`).replace('127.0.0.1:9000', `127.0.0.1:${demoPort}`);
  assert.notEqual(yaml, original);
  const settings = yaml.split('\n').filter((l) => !l.trimStart().startsWith('#')).join('\n');
  assert.ok(!/\b(8080|9901|9000)\b/.test(settings), 'every port of the example is replaced');
  writeFileSync(file, yaml);
  // its own process group (spawnTracked), as a terminal's foreground job would be
  const child = spawnTracked(process.execPath, ['scripts/quickstart.mjs'], {
    cwd: ROOT,
    env: { ...process.env, PORTCULLIS_QUICKSTART_FROM_SRC: '1', PORTCULLIS_QUICKSTART_CONFIG: file, PORT: String(demoPort) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let text = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { text += d; });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`quickstart exited (${child.exitCode}):\n${text}`);
    try {
      const r = await request(`http://127.0.0.1:${port}/api/hello`);
      const body = await r.body.text();
      return r.statusCode === 200 && r.headers['x-served-by'] === 'portcullis-quickstart' && body.includes('demo-upstream');
    } catch { return false; }
  }, { what: 'the quickstart gateway to serve /api/hello through the demo upstream', timeoutMs: 90_000, intervalMs: 200 });
  // the two children lead their own process groups; the gateway's group holds its cluster worker too
  const kids = processes().filter((p) => p.ppid === child.pid);
  assert.equal(kids.length, 2, `two children: ${JSON.stringify(kids)}`);
  const groups = kids.map((k) => k.pgid);
  assert.deepEqual(groups.sort(), kids.map((k) => k.pid).sort(), 'each child leads its own process group');
  assert.ok(!groups.includes(child.pid!));
  assert.ok(liveIn(groups).length >= 3, 'demo upstream, gateway primary and its worker');
  return { child, port, stderr: () => text, exited, groups };
}

describe('npm start (scripts/quickstart.mjs) leaves nothing running', { concurrency: true }, () => {
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    it(`${sig} to the script: it stops both children, waits for them, exits 0`, async (t) => {
      const q = await startQuickstart(t);
      q.child.kill(sig);
      const { code } = await q.exited;
      assert.equal(code, 0, q.stderr());
      // it waited for the children: nothing of theirs is left when it has exited
      assert.deepEqual(liveIn(q.groups), []);
    });
  }

  it('Ctrl-C (SIGINT to the whole foreground process group): both children stop, the script exits 0', async (t) => {
    const q = await startQuickstart(t);
    process.kill(-q.child.pid!, 'SIGINT');
    const { code } = await q.exited;
    assert.equal(code, 0, q.stderr());
    assert.deepEqual(liveIn(q.groups), []);
  });

  it('the script killed with SIGKILL: the children notice (IPC channel closed) and stop by themselves', async (t) => {
    const q = await startQuickstart(t);
    q.child.kill('SIGKILL');
    assert.equal((await q.exited).signal, 'SIGKILL');
    const left = await waitFor(() => (liveIn(q.groups).length === 0 ? 'none' : undefined), { what: 'the orphaned children to stop', timeoutMs: 60_000, intervalMs: 100 });
    assert.equal(left, 'none');
  });
});
