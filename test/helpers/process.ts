// Running the real CLI as a child process (cluster mode, signals, file watching) and reading its
// structured log lines from stderr.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GatewayConfig } from '../../src/config/schema.js';
import { deleteTestKeys, testKeyPrefix, TEST_REDIS_URL } from './redis.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

export interface LogLine { msg?: string; level?: number; pid?: number; port?: number; listener?: string; [k: string]: unknown }

export interface GatewayProcess {
  child: ChildProcess;
  lines: LogLine[];
  /** resolves with the first log line (seen so far or later) that satisfies pred */
  waitFor(pred: (l: LogLine) => boolean, timeoutMs?: number, from?: number): Promise<LogLine>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
}

export function spawnGateway(args: string[], env: NodeJS.ProcessEnv = {}): GatewayProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: root,
    env: { ...process.env, PORTCULLIS_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const lines: LogLine[] = [];
  let text = '';
  let buf = '';
  const waiters = new Set<() => void>();
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => {
    text += d;
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf('\n')) !== -1) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try { lines.push(JSON.parse(line) as LogLine); } catch { lines.push({ msg: line }); }
    }
    for (const w of waiters) w();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => { for (const w of waiters) w(); resolve({ code, signal }); });
  });
  return {
    child,
    lines,
    exited,
    stderr: () => text,
    waitFor(pred, timeoutMs = 15_000, from = 0) {
      return new Promise((resolve, reject) => {
        const check = () => {
          for (let i = from; i < lines.length; i++) if (pred(lines[i]!)) { cleanup(); resolve(lines[i]!); return true; }
          if (child.exitCode !== null || child.signalCode !== null) { cleanup(); reject(new Error(`gateway exited before the expected log line. stderr:\n${text}`)); return true; }
          return false;
        };
        const timer = setTimeout(() => { cleanup(); reject(new Error(`timed out waiting for a log line. stderr:\n${text}`)); }, timeoutMs);
        const cleanup = () => { clearTimeout(timer); waiters.delete(w); };
        const w = () => { check(); };
        if (!check()) waiters.add(w);
      });
    },
  };
}

/**
 * Writes `cfg` (quiet: no access log, no status listener, short drain) as `<dir>/<name>.json`, starts
 * `portcullis start` on it and waits until every worker listens on listener `main`.
 */
export async function startGatewayProcess(dir: string, name: string, cfg: GatewayConfig, env: NodeJS.ProcessEnv = {}): Promise<{ p: GatewayProcess; origin: string; pids: number[] }> {
  const file = join(dir, `${name}.json`);
  await writeFile(file, JSON.stringify({ ...cfg, accessLog: { enabled: false }, server: { ...cfg.server, status: { enabled: false }, shutdownTimeoutMs: 2000 } }));
  const p = spawnGateway(['start', '-c', file], env);
  const workers = cfg.server?.workers ?? 1;
  const first = await p.waitFor((l) => l.listener === 'main');
  const pids = [first.pid!];
  while (pids.length < (workers as number)) pids.push((await p.waitFor((l) => l.listener === 'main' && !pids.includes(l.pid!))).pid!);
  return { p, origin: `http://127.0.0.1:${first.port}`, pids };
}

/** SIGTERM, then SIGKILL after 5 s: a test suite never waits on a process that does not stop. */
export async function stopGatewayProcess(p: GatewayProcess): Promise<void> {
  p.child.kill('SIGTERM');
  const t = setTimeout(() => p.child.kill('SIGKILL'), 5000);
  await p.exited;
  clearTimeout(t);
}

export type StartedGateway = Awaited<ReturnType<typeof startGatewayProcess>>;

/** A node with 2 cluster workers on the memory store, and two single-worker nodes sharing one Redis. */
export interface NodeTrio {
  cluster: StartedGateway;
  redisA: StartedGateway;
  redisB: StartedGateway;
  /** stops the three processes, removes their configs and deletes their Redis keys */
  close(): Promise<void>;
}

/**
 * Starts the three gateway processes at once (each takes a few seconds to boot). `cfg` gives a node's
 * config; the Redis nodes get `state: redis` with a unique key prefix added to it.
 */
export async function startNodeTrio(name: string, cfg: (extra?: Partial<GatewayConfig>) => GatewayConfig): Promise<NodeTrio> {
  const dir = await mkdtemp(join(tmpdir(), `portcullis-${name}-`));
  const prefix = testKeyPrefix(name);
  const state = { type: 'redis' as const, url: TEST_REDIS_URL, keyPrefix: prefix };
  const started = await Promise.allSettled([
    startGatewayProcess(dir, 'cluster', { ...cfg(), server: { workers: 2 } }),
    startGatewayProcess(dir, 'redis-a', cfg({ state })),
    startGatewayProcess(dir, 'redis-b', cfg({ state })),
  ]);
  const close = async (): Promise<void> => {
    await Promise.all(started.map((s) => (s.status === 'fulfilled' ? stopGatewayProcess(s.value.p) : undefined)));
    await rm(dir, { recursive: true, force: true });
    await deleteTestKeys(prefix);
  };
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed !== undefined) { await close(); throw failed.reason; }
  const [cluster, redisA, redisB] = started.map((s) => (s as PromiseFulfilledResult<StartedGateway>).value) as [StartedGateway, StartedGateway, StartedGateway];
  return { cluster, redisA, redisB, close };
}
