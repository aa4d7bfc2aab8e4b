// The PostgreSQL key store against a real server (127.0.0.1:5432, db `test`), in a schema of its own that
// is dropped afterwards: concurrent migrations, the CLI round trip, and two "nodes" seeing a revocation
// within a second (through NOTIFY, and through the poll alone).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { openPostgresKeyStore } from '../../src/identity/api-keys/postgres.js';
import { apiKeyDirectory } from '../../src/identity/api-keys/directory.js';
import { generateApiKey, hashApiKey, keyHint } from '../../src/identity/api-keys/format.js';
import { waitFor } from '../helpers/wait.js';
import { PEPPER, PG_URL, dropSchema, identityEnv, keyFromOutput, keyIdFromOutput, runCli, uniqueSchema } from '../helpers/keys.js';

const schema = uniqueSchema();
const cliSchema = `${schema}_cli`;
after(async () => {
  await dropSchema(schema);
  await dropSchema(cliSchema);
});

before(async () => {
  // nodes starting together: the advisory lock makes them migrate one after the other
  const stores = await Promise.all([1, 2, 3].map(() => openPostgresKeyStore({ url: PG_URL, schema })));
  await Promise.all(stores.map((s) => s.close()));
});

test('migrations: concurrent opens leave one applied version; reopening changes nothing', async () => {
  const again = await openPostgresKeyStore({ url: PG_URL, schema });
  await again.close();
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    const r = await c.query(`SELECT version FROM ${schema}.schema_migrations ORDER BY version`);
    assert.deepEqual(r.rows, [{ version: 1 }, { version: 2 }]);
  } finally {
    await c.end();
  }
  await assert.rejects(openPostgresKeyStore({ url: PG_URL, schema: 'Bad-Name' }), /invalid PostgreSQL schema name/);
});

test('two nodes see a revocation within one second (node B polls only every 60 s, so NOTIFY must deliver it)', async (t) => {
  const writer = await openPostgresKeyStore({ url: PG_URL, schema });
  // node A: normal refresh; node B: a poll so slow that only NOTIFY can be in time
  const a = await identityEnv({ pepper: PEPPER, keyStore: { type: 'postgres', url: PG_URL, schema } });
  const b = await identityEnv({ pepper: PEPPER, keyStore: { type: 'postgres', url: PG_URL, schema, refreshMs: 60_000 } });
  try {
    const dirA = apiKeyDirectory(a.env);
    const dirB = apiKeyDirectory(b.env);
    await Promise.all([a.ready(), b.ready()]);
    const key = generateApiKey();
    const row = await writer.createKey({ consumerId: 'acme', hash: hashApiKey(PEPPER, key), hint: keyHint(key), scopes: ['read'] });
    await waitFor(() => dirA.lookup(key) !== undefined && dirB.lookup(key) !== undefined, { timeoutMs: 1000, intervalMs: 5, what: 'new key on both nodes' });
    assert.deepEqual(a.env.consumers.get('acme'), { id: 'acme', roles: [], scopes: [], metadata: {} });

    const start = performance.now();
    await writer.revokeKey(row.id);
    await waitFor(() => dirA.lookup(key)?.revoked && dirB.lookup(key)?.revoked, { timeoutMs: 1000, intervalMs: 5, what: 'revocation on both nodes' });
    const ms = performance.now() - start;
    t.diagnostic(`revocation visible on both nodes after ${ms.toFixed(1)} ms`);
    assert.ok(ms < 1000);
  } finally {
    await Promise.all([a.close(), b.close(), writer.close()]);
  }
});

test('the poll alone (no notification) also delivers changes within refreshMs', async () => {
  const writer = await openPostgresKeyStore({ url: PG_URL, schema });
  const a = await identityEnv({ pepper: PEPPER, keyStore: { type: 'postgres', url: PG_URL, schema, refreshMs: 100 } });
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    const dir = apiKeyDirectory(a.env);
    await a.ready();
    const key = generateApiKey();
    const row = await writer.createKey({ consumerId: 'poll', hash: hashApiKey(PEPPER, key), hint: keyHint(key) });
    await waitFor(() => dir.lookup(key), { timeoutMs: 1000, what: 'new key' });
    // a change written without NOTIFY (as if the notification were lost)
    await c.query(`BEGIN; UPDATE ${schema}.store_state SET revision = revision + 1; UPDATE ${schema}.api_keys SET revoked_at = 1, enabled = false, revision = (SELECT revision FROM ${schema}.store_state) WHERE id = '${row.id}'; COMMIT`);
    await waitFor(() => dir.lookup(key)?.revoked, { timeoutMs: 1000, what: 'revocation via the poll' });
  } finally {
    await c.end();
    await Promise.all([a.close(), writer.close()]);
  }
});

test('an unreachable PostgreSQL at start is a clear error (the gateway does not serve)', async () => {
  const h = await identityEnv({ pepper: PEPPER, keyStore: { type: 'postgres', url: 'postgres://postgres@127.0.0.1:1/test', schema } });
  apiKeyDirectory(h.env);
  await assert.rejects(h.ready(), /ECONNREFUSED|connect/);
  await h.close();
});

test('CLI round trip against PostgreSQL (--store postgres://...?schema=)', async () => {
  const store = ['--store', `${PG_URL}?schema=${cliSchema}`];
  let r = await runCli(['consumers', 'create', 'acme', ...store, '--scopes', 'read,write', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual((JSON.parse(r.stdout) as { scopes: string[] }).scopes, ['read', 'write']);
  r = await runCli(['keys', 'create', ...store, '--consumer', 'acme', '--expires', '2h']);
  assert.equal(r.code, 0, r.stderr);
  const key = keyFromOutput(r.stdout);
  const id = keyIdFromOutput(r.stdout);
  r = await runCli(['keys', 'rotate', id, ...store, '--overlap', '10m']);
  assert.equal(r.code, 0, r.stderr);
  const nextId = keyIdFromOutput(r.stdout);
  assert.match(r.stdout, new RegExp(`The old key ${id} keeps working until`));
  r = await runCli(['keys', 'revoke', nextId, ...store]);
  assert.equal(r.code, 0, r.stderr);
  r = await runCli(['keys', 'list', ...store, '--json']);
  const rows = JSON.parse(r.stdout) as { id: string; status: string; expiresAt: string; rotatedFrom: string | null }[];
  assert.deepEqual(rows.map((k) => [k.id, k.status, k.rotatedFrom]), [[id, 'active', null], [nextId, 'revoked', id]]);
  const oldExpiry = Date.parse(rows[0]!.expiresAt);
  assert.ok(oldExpiry - Date.now() <= 10 * 60_000 && oldExpiry - Date.now() > 9 * 60_000, 'old key expires after the overlap');
  assert.ok(!r.stdout.includes(key) && !r.stdout.includes('hmac-sha256'));
  r = await runCli(['consumers', 'delete', 'acme', ...store]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /revoked 1 key\b/);
});

test('a query that never returns (table locked by another session) fails after the query timeout instead of hanging', async () => {
  const store = await openPostgresKeyStore({ url: PG_URL, schema, queryTimeoutMs: 300 });
  const locker = new pg.Client({ connectionString: PG_URL });
  await locker.connect();
  try {
    await locker.query('BEGIN');
    await locker.query(`LOCK TABLE ${schema}.api_keys IN ACCESS EXCLUSIVE MODE`);
    const t0 = performance.now();
    await assert.rejects(store.changesSince(0), /timeout/i);
    assert.ok(performance.now() - t0 < 3_000);
    await locker.query('ROLLBACK');
    // the store works again once the lock is gone
    assert.ok(((await store.changesSince(0))?.revision ?? 0) >= 0);
  } finally {
    await locker.end();
    await store.close();
  }
});
