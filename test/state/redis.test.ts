// The Redis state store against a real Redis (127.0.0.1:6379), a closed port and a server that never answers.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Redis } from 'ioredis';
import { RedisStateStore, redisKey } from '../../src/state/redis.js';
import { createStateStore } from '../../src/state/index.js';
import { silentLogger } from '../../src/observability/logger.js';
import { captureLogger } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';
import { deleteTestKeys, testKeyPrefix } from '../helpers/redis.js';

const prefix = testKeyPrefix('state');
const admin = new Redis('redis://127.0.0.1:6379', { lazyConnect: true, maxRetriesPerRequest: 1 });
after(async () => {
  admin.disconnect();
  await deleteTestKeys(prefix);
});

test('claimOnce over Redis: one winner across two stores, key name hash-tagged with the prefix', async () => {
  const cfg = { type: 'redis' as const, url: 'redis://127.0.0.1:6379', keyPrefix: prefix };
  const a = createStateStore(cfg, { logger: silentLogger });
  const b = createStateStore(cfg, { logger: silentLogger });
  try {
    await Promise.all([a.ready(), b.ready()]);
    assert.equal(a.kind, 'redis');
    assert.equal(await a.claimOnce('dpop:abc', 5000), true);
    assert.equal(await b.claimOnce('dpop:abc', 5000), false);
    await admin.connect();
    const ttl = await admin.pttl(`${prefix}{dpop:abc}`);
    assert.ok(ttl > 0 && ttl <= 5000, `ttl ${ttl}`);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

test('claimOnce over Redis: the key is free again after its TTL', async () => {
  const s = new RedisStateStore({ type: 'redis', url: 'redis://127.0.0.1:6379', keyPrefix: prefix }, { logger: silentLogger });
  try {
    await s.ready();
    assert.equal(await s.claimOnce('short', 30), true);
    assert.equal(await s.claimOnce('short', 30), false);
    // Redis expiry has no event to wait on: poll until the key is claimable again
    assert.equal(await waitFor(() => s.claimOnce('short', 30), { timeoutMs: 2000, what: 'the marker to expire' }), true);
  } finally {
    await s.close();
  }
});

test('redis key names: braces and % in a logical key cannot end the hash tag', () => {
  assert.equal(redisKey('p:', 'dpop:x'), 'p:{dpop:x}');
  assert.equal(redisKey('p:', 'a}b{c%'), 'p:{a%7Db%7Bc%25}');
});

test('Redis down (closed port): ready() gives up after its wait, claimOnce rejects at once, errors are logged, no crash', async () => {
  const port = await closedPort();
  const cap = captureLogger();
  const s = new RedisStateStore({ type: 'redis', url: `redis://127.0.0.1:${port}`, keyPrefix: prefix, commandTimeoutMs: 100 }, { logger: cap.logger, readyWaitMs: 200 });
  try {
    await s.ready();
    const t0 = Date.now();
    await assert.rejects(s.claimOnce('k', 1000));
    assert.ok(Date.now() - t0 < 100, 'fails fast: no offline queue');
    assert.ok(cap.lines.some((l) => l.msg === 'redis state store not reachable yet; operations fail (closed) until it is'));
    assert.ok(cap.lines.some((l) => l.msg === 'redis state store error' && /ECONNREFUSED/.test(String(l.err))));
  } finally {
    await s.close();
  }
});

test('Redis hung (accepts, never answers a command): claimOnce rejects after commandTimeoutMs', async () => {
  // Answers the connection set-up (CLIENT SETINFO, the INFO ready check) and then nothing: a stuck Redis.
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('data', (d) => {
      for (const m of d.toString('latin1').matchAll(/\*\d+\r\n\$\d+\r\n(\w+)/g)) {
        const cmd = m[1]!.toLowerCase();
        if (cmd === 'client') sock.write('+OK\r\n');
        else if (cmd === 'info') sock.write('$0\r\n\r\n');
      }
    });
    sock.on('error', () => undefined);
    sock.on('close', () => sockets.delete(sock));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const s = new RedisStateStore({ type: 'redis', url: `redis://127.0.0.1:${port}`, keyPrefix: prefix, commandTimeoutMs: 100 }, { logger: silentLogger });
  try {
    await s.ready();
    assert.equal(s.client.status, 'ready');
    const t0 = Date.now();
    await assert.rejects(s.claimOnce('k', 1000), /timed out/i);
    const took = Date.now() - t0;
    assert.ok(took >= 90 && took < 1000, `took ${took} ms`);
  } finally {
    await s.close();
    for (const sock of sockets) sock.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

test('redis-cluster: a seed URL that does not parse is a clear error that does not echo the URL (it may hold a password)', () => {
  assert.throws(
    () => new RedisStateStore({ type: 'redis-cluster', nodes: ['redis://127.0.0.1:7000', 'redis://u:s3cret%zz@host:7001'] }, { logger: silentLogger }),
    (err: Error) => err.message === 'state.nodes[1] is not a valid redis:// URL',
  );
});
