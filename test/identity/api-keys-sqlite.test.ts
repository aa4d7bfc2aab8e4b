// The SQLite key store: migrations, the in-memory index and its refresh (revocations, deletions, a store
// that fails for a while), merging with configured keys, and the real CLI round trip.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openSqliteKeyStore } from '../../src/identity/api-keys/sqlite.js';
import { apiKeyDirectory } from '../../src/identity/api-keys/directory.js';
import { generateApiKey, hashApiKey, keyHint } from '../../src/identity/api-keys/format.js';
import type { KeyStore } from '../../src/identity/api-keys/store.js';
import { waitFor } from '../helpers/wait.js';
import { captureLogger } from '../helpers/servers.js';
import { PEPPER, identityEnv, keyFromOutput, keyIdFromOutput, runCli } from '../helpers/keys.js';

let dir: string;
before(() => { dir = mkdtempSync(join(tmpdir(), 'portcullis-keys-sqlite-')); });
after(() => rmSync(dir, { recursive: true, force: true }));

async function newKey(store: KeyStore, consumerId: string, extra: Partial<Parameters<KeyStore['createKey']>[0]> = {}) {
  const key = generateApiKey();
  const row = await store.createKey({ consumerId, hash: hashApiKey(PEPPER, key), hint: keyHint(key), ...extra });
  return { key, row };
}

test('migrations run once, are idempotent across opens, and the new file is private', async () => {
  const file = join(dir, 'sub', 'migrate.db');
  const a = openSqliteKeyStore(file);
  const b = openSqliteKeyStore(file); // a second process/worker opening the same file
  await a.close();
  await b.close();
  const c = openSqliteKeyStore(file);
  await c.close();
  const db = new Database(file, { readonly: true });
  try {
    assert.deepEqual(db.prepare('SELECT version FROM schema_migrations ORDER BY version').pluck().all(), [1, 2]);
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
  } finally {
    db.close();
  }
  assert.equal(statSync(file).mode & 0o777, 0o600);
});

test('a newer schema version than this build knows is refused', async () => {
  const file = join(dir, 'newer.db');
  (await openSqliteKeyStore(file)).close();
  const db = new Database(file);
  db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (99, 0)').run();
  db.close();
  assert.throws(() => openSqliteKeyStore(file), /schema version 99, newer than this Portcullis knows/);
});

test('index: store keys and consumers merge with configured ones; revocation and deletion arrive within refreshMs', async () => {
  const file = join(dir, 'index.db');
  const writer = openSqliteKeyStore(file);
  const cfgKey = generateApiKey();
  const { key: acmeKey, row: acmeRow } = await newKey(writer, 'acme', { scopes: ['write'] });
  await writer.createConsumer({ id: 'beta', roles: ['reader'], metadata: { plan: 'free' } });
  const { key: betaKey, row: betaRow } = await newKey(writer, 'beta');
  const h = await identityEnv({
    pepper: PEPPER,
    keyStore: { type: 'sqlite', path: file, refreshMs: 50 },
    consumers: [{ id: 'acme', roles: ['admin'], apiKeys: [{ id: 'cfg-1', hash: hashApiKey(PEPPER, cfgKey) }] }],
  });
  try {
    const directory = apiKeyDirectory(h.env);
    await h.ready();
    assert.equal(directory.lookup(cfgKey)?.id, 'cfg-1');
    assert.equal(directory.lookup(acmeKey)?.id, acmeRow.id);
    assert.equal(directory.lookup(betaKey)?.id, betaRow.id);
    // configured consumer wins over the (empty) store row `keys create --consumer acme` made
    assert.deepEqual(h.env.consumers.get('acme')?.roles, ['admin']);
    assert.deepEqual(h.env.consumers.get('beta'), { id: 'beta', roles: ['reader'], scopes: [], metadata: { plan: 'free' } });

    await writer.revokeKey(acmeRow.id);
    await waitFor(() => directory.lookup(acmeKey)?.revoked, { timeoutMs: 1000, what: 'revocation in the index' });
    assert.equal(directory.lookup(betaKey)?.revoked, false);

    assert.equal(await writer.deleteConsumer('beta'), 1);
    await waitFor(() => h.env.consumers.get('beta') === undefined && directory.lookup(betaKey)?.revoked, { timeoutMs: 1000, what: 'consumer deletion' });

    const { key: late } = await newKey(writer, 'gamma');
    await waitFor(() => directory.lookup(late), { timeoutMs: 1000, what: 'a new key' });
    assert.deepEqual(h.env.consumers.get('gamma')?.roles, []);
  } finally {
    await h.close();
    await writer.close();
  }
});

test('damaged rows: the gateway still starts, a key whose restriction cannot be read is not used, later changes still arrive', async () => {
  const file = join(dir, 'damaged.db');
  const writer = openSqliteKeyStore(file);
  const { key: good, row: goodRow } = await newKey(writer, 'acme');
  const { key: notJson, row: notJsonRow } = await newKey(writer, 'acme', { cidrs: ['10.0.0.0/8'] });
  const { key: notList, row: notListRow } = await newKey(writer, 'acme', { cidrs: ['10.0.0.0/8'] });
  await writer.createConsumer({ id: 'beta', roles: ['reader'] });
  const raw = new Database(file);
  // the cidr restriction of one key is not JSON, of another an object: neither may fall away (fail open)
  raw.prepare('UPDATE api_keys SET cidrs = ? WHERE id = ?').run('["10.0.0.0/8"', notJsonRow.id);
  raw.prepare('UPDATE api_keys SET cidrs = ? WHERE id = ?').run('{}', notListRow.id);
  raw.prepare("UPDATE consumers SET roles = 'not json' WHERE id = 'beta'").run();
  raw.close();
  const cap = captureLogger();
  const h = await identityEnv({ pepper: PEPPER, keyStore: { type: 'sqlite', path: file, refreshMs: 50 } }, { logger: cap.logger });
  try {
    const directory = apiKeyDirectory(h.env);
    await h.ready();
    assert.equal(directory.lookup(good)?.id, goodRow.id);
    assert.equal(directory.lookup(notJson), undefined);
    assert.equal(directory.lookup(notList), undefined);
    assert.deepEqual(h.env.consumers.get('beta')?.roles, [], 'damaged roles count as none');
    assert.ok(cap.lines.some((l) => l.keyId === notJsonRow.id && l.columns === 'cidrs'));
    assert.ok(cap.lines.some((l) => l.consumer === 'beta' && l.columns === 'roles'));
    // the damaged rows come back with every refresh; a revocation behind them still lands
    await writer.revokeKey(goodRow.id);
    await waitFor(() => directory.lookup(good)?.revoked, { timeoutMs: 1000, what: 'revocation past damaged rows' });
  } finally {
    await h.close();
    await writer.close();
  }
});

test('a failing store keeps the last loaded keys, logs (rate-limited) and catches up when it is back', async () => {
  const file = join(dir, 'failing.db');
  const writer = openSqliteKeyStore(file);
  const { key } = await newKey(writer, 'acme');
  await writer.close();
  const cap = captureLogger();
  const h = await identityEnv({ pepper: PEPPER, keyStore: { type: 'sqlite', path: file, refreshMs: 50 } }, { logger: cap.logger });
  const directory = apiKeyDirectory(h.env);
  await h.ready();
  const raw = new Database(file);
  try {
    raw.exec('ALTER TABLE store_state RENAME TO store_state_away');
    await waitFor(() => cap.lines.find((l) => l.msg === 'API key store refresh failed; serving the last loaded keys'), { what: 'refresh error log' });
    assert.equal(directory.lookup(key)?.revoked, false, 'last good index still answers');
    assert.equal(cap.lines.filter((l) => l.msg === 'API key store refresh failed; serving the last loaded keys').length, 1, 'rate-limited');
    raw.exec('ALTER TABLE store_state_away RENAME TO store_state');
    const reopened = openSqliteKeyStore(file);
    const { row } = await newKey(reopened, 'acme');
    await reopened.revokeKey(row.id);
    await reopened.close();
    await waitFor(() => cap.lines.find((l) => l.msg === 'API key store reachable again'), { what: 'recovery log' });
  } finally {
    raw.close();
    await h.close();
  }
});

test('the first load must succeed: ready() rejects on an unreadable store', async () => {
  const file = join(dir, 'not-a-db.db');
  writeFileSync(file, 'this is not a database file at all, just text');
  const h = await identityEnv({ pepper: PEPPER, keyStore: { type: 'sqlite', path: file } });
  apiKeyDirectory(h.env);
  await assert.rejects(h.ready(), /not a database/);
  await h.close();
});

test('CLI round trip: consumers, create, list, show, rotate, revoke, hash — hashes never printed', async () => {
  const db = join(dir, 'cli.db');
  const store = ['--store', `sqlite:${db}`];
  const outputs: string[] = [];
  const cli = async (args: string[], opts: Parameters<typeof runCli>[1] = {}) => {
    const r = await runCli(args, opts);
    outputs.push(r.stdout, r.stderr);
    return r;
  };

  let r = await cli(['consumers', 'create', 'acme', ...store, '--roles', 'admin,ops', '--metadata', 'plan=gold,tier=2']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /metadata: plan=gold,tier=2/);

  r = await cli(['keys', 'create', ...store, '--consumer', 'acme', '--scopes', 'read', '--cidr', '127.0.0.1,10.0.0.0/8', '--origin', 'https://App.example.com', '--expires', '30d']);
  assert.equal(r.code, 0, r.stderr);
  const key = keyFromOutput(r.stdout);
  const id = keyIdFromOutput(r.stdout);
  assert.match(r.stdout, /only time the key is shown/);
  assert.match(r.stdout, /origins:\s+https:\/\/app\.example\.com/);

  r = await cli(['keys', 'list', ...store]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`${id}\\s+acme\\s+pcl_…${key.slice(-4)}\\s+active`));
  assert.ok(!r.stdout.includes(key));

  r = await cli(['keys', 'list', ...store, '--consumer', 'acme', '--json']);
  const listed = JSON.parse(r.stdout) as Record<string, unknown>[];
  assert.equal(listed.length, 1);
  assert.deepEqual([listed[0]!.id, listed[0]!.status, listed[0]!.scopes, listed[0]!.cidrs], [id, 'active', ['read'], ['127.0.0.1', '10.0.0.0/8']]);

  r = await cli(['keys', 'show', id, ...store]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /status:\s+active/);

  r = await cli(['keys', 'hash', ...store], { input: `${key}\n` });
  assert.equal(r.code, 0, r.stderr);
  const hash = r.stdout.trim();
  assert.equal(hash, hashApiKey(PEPPER, key));

  r = await cli(['keys', 'rotate', id, ...store, '--overlap', '1h']);
  assert.equal(r.code, 0, r.stderr);
  const next = keyFromOutput(r.stdout);
  const nextId = keyIdFromOutput(r.stdout);
  assert.notEqual(next, key);
  assert.match(r.stdout, new RegExp(`rotated from:\\s+${id}`));
  assert.match(r.stdout, /cidrs:\s+127\.0\.0\.1,10\.0\.0\.0\/8/);

  r = await cli(['keys', 'revoke', id, ...store]);
  assert.equal(r.code, 0, r.stderr);
  r = await cli(['keys', 'list', ...store, '--json']);
  const after = JSON.parse(r.stdout) as { id: string; status: string; expiresAt: string }[];
  assert.deepEqual(after.map((k) => [k.id, k.status]), [[id, 'revoked'], [nextId, 'active']]);

  // config file instead of --store: relative path against the config's directory, pepper from the config
  const cfgDir = join(dir, 'conf');
  rmSync(cfgDir, { recursive: true, force: true });
  const { mkdirSync } = await import('node:fs');
  mkdirSync(cfgDir);
  writeFileSync(join(cfgDir, 'gw.yaml'), `
listeners: [{ name: main, address: 127.0.0.1, port: 0 }]
routes: [{ id: r, match: { pathPrefix: / }, respond: { status: 200 } }]
identity: { pepper: "\${MY_PEPPER}", keyStore: { type: sqlite, path: ./data/keys.db } }
`);
  r = await cli(['keys', 'create', '-c', join(cfgDir, 'gw.yaml'), '--consumer', 'svc'], { env: { MY_PEPPER: PEPPER, PORTCULLIS_KEY_PEPPER: '' } });
  assert.equal(r.code, 0, r.stderr);
  const viaConfig = openSqliteKeyStore(join(cfgDir, 'data', 'keys.db'));
  assert.equal((await viaConfig.listKeys('svc'))[0]!.hash, hashApiKey(PEPPER, keyFromOutput(r.stdout)));
  await viaConfig.close();

  // errors: usage (2), unknown id (1), revoked (1), missing pepper (1), bad CIDR (2)
  const [noConsumer, unknownId, revoked, noPepper, badCidr, generated] = await Promise.all([
    cli(['keys', 'create', ...store]),
    cli(['keys', 'show', 'key_nope', ...store]),
    cli(['keys', 'rotate', id, ...store]),
    cli(['keys', 'create', ...store, '--consumer', 'x'], { env: { PORTCULLIS_KEY_PEPPER: '' } }),
    cli(['keys', 'create', ...store, '--consumer', 'x', '--cidr', '10.0.0.1/8']),
    cli(['keys', 'generate']),
  ]);
  assert.equal(generated.code, 0, generated.stderr);
  const genKey = keyFromOutput(generated.stdout);
  assert.match(generated.stdout, new RegExp(`^hash: ${hashApiKey(PEPPER, genKey)}$`, 'm'));
  assert.deepEqual([noConsumer.code, unknownId.code, revoked.code, noPepper.code, badCidr.code], [2, 1, 1, 1, 2]);
  assert.match(noConsumer.stderr, /missing --consumer/);
  assert.match(revoked.stderr, /is revoked/);
  assert.match(noPepper.stderr, /API keys need a pepper: set the PORTCULLIS_KEY_PEPPER environment variable/);
  assert.match(badCidr.stderr, /host bits set/);

  // only `keys hash` prints a hash; nothing prints a stored one
  const all = outputs.join('\n');
  const hexes = [hash.slice('hmac-sha256:'.length), hashApiKey(PEPPER, next).slice('hmac-sha256:'.length)];
  assert.equal(all.split(hexes[0]!).length - 1, 1, 'the hash appears once: the output of `keys hash`');
  assert.equal(all.split('hmac-sha256:').length - 1, 2, 'only `keys hash` and `keys generate` print a hash');
  assert.ok(!all.includes(hexes[1]!));
});

test('CLI: an option a subcommand does not use is an error, never silently ignored (rotate cannot narrow a key)', async () => {
  const store = `sqlite:${join(dir, 'cli-options.db')}`;
  const created = await runCli(['keys', 'create', '--consumer', 'acme', '--scopes', 'read,write', '--store', store]);
  assert.equal(created.code, 0, created.stderr);
  const id = keyIdFromOutput(created.stdout);
  const narrowed = await runCli(['keys', 'rotate', id, '--scopes', 'read', '--cidr', '10.0.0.0/8', '--store', store]);
  assert.equal(narrowed.code, 2);
  assert.match(narrowed.stderr, /--scopes does not apply to keys rotate \(a rotated key keeps the old key's restrictions/);
  assert.equal((await runCli(['consumers', 'list', '--roles', 'x', '--store', store])).code, 2);
  // reading a store that is not there (a mistyped path) is an error, and creates nothing
  const missing = join(dir, 'no-such-dir', 'keys.db');
  const listed = await runCli(['keys', 'list', '--store', `sqlite:${missing}`]);
  assert.equal(listed.code, 1);
  assert.match(listed.stderr, /no key store at /);
  assert.equal(existsSync(join(dir, 'no-such-dir')), false);
  // the options a subcommand does use still work
  const rotated = await runCli(['keys', 'rotate', id, '--overlap', '1h', '--store', store, '--json']);
  assert.equal(rotated.code, 0, rotated.stderr);
  assert.deepEqual((JSON.parse(rotated.stdout) as { scopes: string[] }).scopes, ['read', 'write']);
});
