// A real three-master Redis Cluster on loopback for tests: redis-server processes with cluster-enabled,
// joined by `redis-cli --cluster create`. Ports (and the cluster bus ports) are picked free; everything
// lives in a temp dir that close() removes.
import { execFile, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { closedPort } from './servers.js';
import { scaled, waitFor } from './wait.js';
import { spawnTracked } from './process.js';
import { removeTempDir, tempDir } from './tmp.js';

const run = promisify(execFile);

export interface RedisClusterHandle {
  /** redis://127.0.0.1:PORT of each master */
  readonly nodes: readonly string[];
  readonly ports: readonly number[];
  /** kills every node (SIGKILL) and removes the temp dir; safe to call twice */
  close(): Promise<void>;
}

export async function startRedisCluster(size = 3): Promise<RedisClusterHandle> {
  const dir = tempDir('pc-redis-cluster-');
  const ports: number[] = [];
  const busPorts: number[] = [];
  for (let i = 0; i < size; i++) { ports.push(await closedPort()); busPorts.push(await closedPort()); }
  const procs: ChildProcess[] = ports.map((port, i) => spawnTracked('redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-port', String(busPorts[i]),
    '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--dir', dir, '--save', '', '--appendonly', 'no',
  ], { stdio: 'ignore' }));
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await Promise.all(procs.map((p) => new Promise<void>((resolve) => {
      if (p.exitCode !== null || p.signalCode !== null) { resolve(); return; }
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    })));
    await removeTempDir(dir);
  };
  try {
    const clients = ports.map((port) => new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => 50 }));
    for (const c of clients) c.on('error', () => undefined); // refused until the node listens: expected
    try {
      await waitFor(async () => (await Promise.all(clients.map((c) => c.ping().then(() => true, () => false)))).every(Boolean), { what: 'redis cluster nodes up', timeoutMs: 60_000 });
      await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { timeout: scaled(60_000), killSignal: 'SIGKILL' });
      const ok = async (c: Redis): Promise<boolean> => String(await c.cluster('INFO')).includes('cluster_state:ok');
      await waitFor(async () => (await Promise.all(clients.map(ok))).every(Boolean), { what: 'redis cluster state ok', timeoutMs: 60_000 });
    } finally {
      for (const c of clients) c.disconnect();
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { nodes: ports.map((p) => `redis://127.0.0.1:${p}`), ports, close };
}
