// Running the real CLI as a child process (cluster mode, signals, file watching) and reading its
// structured log lines from stderr.
//
// Every child a helper starts is in the process registry below: it runs in its own process group
// (detached), so a gateway's cluster workers can be killed with it, and whatever is still running is
// killed when the test file ends (root `after` hook), when the file's process exits for any reason
// (`exit` handler: synchronous SIGKILL of each group) and when it is told to stop (SIGTERM, SIGINT,
// SIGHUP: see cleanup.ts).
import { after } from 'node:test';
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GatewayConfig } from '../../src/config/schema.js';
import { deleteTestKeys, testKeyPrefix, TEST_REDIS_URL } from './redis.js';
import { scaled } from './wait.js';
import { onExitSync } from './cleanup.js';
import { removeTempDir, tempDir } from './tmp.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** How long a gateway process may take to listen (every worker), before the wait fails. */
export const PROCESS_START_TIMEOUT_MS = scaled(90_000);
/** How long a gateway gets to stop after SIGTERM before its whole process group is SIGKILLed. */
export const PROCESS_STOP_TIMEOUT_MS = scaled(30_000);

// ---- process registry ----------------------------------------------------------------------------

interface Tracked { child: ChildProcess; group: boolean }
const registry = new Set<Tracked>();

function killTracked(t: Tracked, signal: NodeJS.Signals): void {
  const pid = t.child.pid;
  if (pid === undefined) return;
  try {
    if (t.group) process.kill(-pid, signal);
    else if (t.child.exitCode === null && t.child.signalCode === null) t.child.kill(signal);
  } catch { /* ESRCH: already gone */ }
}

/** Synchronous: SIGKILL every tracked process group (safe in an `exit` handler). */
export function killAllChildrenSync(): void {
  for (const t of registry) killTracked(t, 'SIGKILL');
  registry.clear();
}

/** Children (or process groups) still registered: for tests of the registry and for diagnostics. */
export function trackedPids(): number[] {
  return [...registry].map((t) => t.child.pid).filter((p): p is number => p !== undefined);
}

onExitSync(killAllChildrenSync);
// Root-level hook of the test file that imported this module: nothing outlives the file's tests.
after(async () => { await Promise.all([...registry].map((t) => stopChild(t.child))); killAllChildrenSync(); });

/**
 * Registers `child` so it is killed at the latest when the test file ends or its process exits.
 * `group`: the child was spawned with `detached: true` and leads its own process group; the whole group
 * is killed. When the child exits its group is swept once (orphaned grandchildren, e.g. cluster workers
 * of a crashed primary) and it leaves the registry.
 */
export function track<C extends ChildProcess>(child: C, opts: { group?: boolean } = {}): C {
  const t: Tracked = { child, group: opts.group ?? false };
  registry.add(t);
  child.once('exit', () => {
    if (t.group) killTracked(t, 'SIGKILL');
    registry.delete(t);
  });
  child.once('error', () => registry.delete(t)); // spawn failed (ENOENT ...): nothing to kill
  return child;
}

/** `spawn`, in a new process group, registered with `track`. */
export function spawnTracked(command: string, args: readonly string[], opts: SpawnOptions = {}): ChildProcess {
  return track(spawn(command, args, { ...opts, detached: true }), { group: true });
}

/**
 * SIGTERM (or `signal`), then SIGKILL to its whole process group after `timeoutMs`; resolves when the
 * child has exited. A test never waits on a process that does not stop.
 */
export async function stopChild(child: ChildProcess, opts: { signal?: NodeJS.Signals; timeoutMs?: number } = {}): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const exited = child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve({ code: child.exitCode, signal: child.signalCode })
    : new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  if (child.exitCode === null && child.signalCode === null) {
    child.kill(opts.signal ?? 'SIGTERM');
    const t = setTimeout(() => {
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { child.kill('SIGKILL'); }
    }, opts.timeoutMs ?? PROCESS_STOP_TIMEOUT_MS);
    try { return await exited; } finally { clearTimeout(t); }
  }
  return exited;
}

// ---- gateway processes ---------------------------------------------------------------------------

export interface LogLine { msg?: string; level?: number; pid?: number; port?: number; listener?: string; [k: string]: unknown }

export interface GatewayProcess {
  child: ChildProcess;
  lines: LogLine[];
  /**
   * Resolves with the first log line (seen so far or later, from index `from`) that satisfies pred;
   * rejects when the process exits first or after `timeoutMs` (default PROCESS_START_TIMEOUT_MS, scaled).
   */
  waitFor(pred: (l: LogLine) => boolean, timeoutMs?: number, from?: number): Promise<LogLine>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
}

export function spawnGateway(args: string[], env: NodeJS.ProcessEnv = {}): GatewayProcess {
  const child = spawnTracked(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
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
    waitFor(pred, timeoutMs = PROCESS_START_TIMEOUT_MS, from = 0) {
      return new Promise((resolve, reject) => {
        const check = () => {
          for (let i = from; i < lines.length; i++) if (pred(lines[i]!)) { cleanup(); resolve(lines[i]!); return true; }
          if (child.exitCode !== null || child.signalCode !== null) { cleanup(); reject(new Error(`gateway exited before the expected log line. stderr:\n${text}`)); return true; }
          return false;
        };
        const timer = setTimeout(() => { cleanup(); reject(new Error(`timed out after ${timeoutMs} ms waiting for a log line. stderr:\n${text}`)); }, timeoutMs);
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
  try {
    const workers = cfg.server?.workers ?? 1;
    const first = await p.waitFor((l) => l.listener === 'main');
    const pids = [first.pid!];
    while (pids.length < (workers as number)) pids.push((await p.waitFor((l) => l.listener === 'main' && !pids.includes(l.pid!))).pid!);
    return { p, origin: `http://127.0.0.1:${first.port}`, pids };
  } catch (err) {
    await stopGatewayProcess(p);
    throw err;
  }
}

/** SIGTERM, then SIGKILL to the process group after PROCESS_STOP_TIMEOUT_MS; resolves once it exited. */
export async function stopGatewayProcess(p: GatewayProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return stopChild(p.child);
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
  const dir = tempDir(`portcullis-${name}-`);
  const prefix = testKeyPrefix(name);
  const state = { type: 'redis' as const, url: TEST_REDIS_URL, keyPrefix: prefix };
  const started = await Promise.allSettled([
    startGatewayProcess(dir, 'cluster', { ...cfg(), server: { workers: 2 } }),
    startGatewayProcess(dir, 'redis-a', cfg({ state })),
    startGatewayProcess(dir, 'redis-b', cfg({ state })),
  ]);
  const close = async (): Promise<void> => {
    await Promise.all(started.map((s) => (s.status === 'fulfilled' ? stopGatewayProcess(s.value.p) : undefined)));
    await removeTempDir(dir);
    await deleteTestKeys(prefix);
  };
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed !== undefined) { await close(); throw failed.reason; }
  const [cluster, redisA, redisB] = started.map((s) => (s as PromiseFulfilledResult<StartedGateway>).value) as [StartedGateway, StartedGateway, StartedGateway];
  return { cluster, redisA, redisB, close };
}
