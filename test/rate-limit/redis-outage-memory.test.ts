// A Redis that hangs (process stopped: the connection stays open, nothing answers) under a steady stream
// of rate-limit calls: what waits on it stays bounded (commands awaiting a reply), calls fail fast, and
// once Redis answers again the timed-out scripts are not run after all (they would count requests that
// were already refused). A Redis that is down (killed): calls fail at once without queuing anything.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import type { Redis } from 'ioredis';
import { closedPort } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';
import { silentLogger } from '../../src/observability/logger.js';
import { RedisStateStore, MAX_PENDING_COMMANDS } from '../../src/state/redis.js';
import type { RateCheck } from '../../src/state/types.js';

const port = await closedPort();
const redis: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
let store: RedisStateStore | undefined;
after(async () => {
  if (redis.exitCode === null && redis.signalCode === null) { redis.kill('SIGCONT'); redis.kill('SIGKILL'); await once(redis, 'exit'); }
  await store?.close();
});
const listening = () => new Promise<boolean>((resolve) => { const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); }); s.on('error', () => resolve(false)); });

test('hung Redis: pending commands stay bounded, timed-out scripts are not resent; dead Redis: nothing queued', async () => {
  await waitFor(listening, { timeoutMs: 5000 });
  store = new RedisStateStore({ type: 'redis', url: `redis://127.0.0.1:${port}`, commandTimeoutMs: 50, keyPrefix: 'outage-test:' }, { logger: silentLogger });
  await store.ready();
  const check: RateCheck = [0, 'k', 1_000_000, 60_000, 0, 0];
  assert.equal((await store.rateLimit([check]))[0], 1);
  const client = store.client as Redis;

  redis.kill('SIGSTOP');
  // one rate-limit call per event-loop turn (a script call each), for well over MAX_PENDING_COMMANDS turns
  let failed = 0;
  let maxPending = 0;
  const t0 = performance.now();
  for (let i = 0; i < 3 * MAX_PENDING_COMMANDS; i++) {
    store.rateLimit([check]).catch(() => { failed++; });
    await new Promise((r) => setImmediate(r));
    maxPending = Math.max(maxPending, client.commandQueue.length);
  }
  await waitFor(() => failed === 3 * MAX_PENDING_COMMANDS, { timeoutMs: 5000, what: 'every call during the hang to fail' });
  assert.ok(performance.now() - t0 < 3000);
  assert.ok(maxPending <= MAX_PENDING_COMMANDS, `${maxPending} commands awaiting a reply from a hung Redis`);

  // Redis answers again: the queued scripts' replies arrive, none of the refused calls was counted twice
  redis.kill('SIGCONT');
  await waitFor(() => client.commandQueue.length === 0, { timeoutMs: 5000, what: 'the backlog to drain' });
  const counted = Number(await client.hget('outage-test:{rl:k}', 'b'));
  // 1 before the hang, plus the scripts that were sent before the cap (Redis runs what it received)
  assert.ok(counted <= 1 + MAX_PENDING_COMMANDS, `counted ${counted}`);

  // dead Redis: refused at once, nothing queued in ioredis
  redis.kill('SIGKILL');
  await once(redis, 'exit');
  await waitFor(() => client.status !== 'ready', { timeoutMs: 5000 });
  for (let i = 0; i < 100; i++) {
    await assert.rejects(store.rateLimit([check]), /not connected/);
  }
  assert.equal(client.commandQueue.length, 0);
  assert.equal((client as unknown as { offlineQueue: { length: number } }).offlineQueue.length, 0);
});
