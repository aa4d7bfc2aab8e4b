// Keys imported from another gateway (`portcullis keys import`): not in the pcl_ format, looked up by the
// HMAC of the whole key. Through a running gateway with a SQLite store: refused as malformed until the
// store holds an imported key, then accepted; CIDR, revocation and rotation work as for generated keys;
// weak keys and keys on the command line are refused. PostgreSQL: the same import through the CLI.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteKeyStore } from '../../src/identity/api-keys/sqlite.js';
import { openPostgresKeyStore } from '../../src/identity/api-keys/postgres.js';
import { apiKeyDirectory } from '../../src/identity/api-keys/directory.js';
import { hashApiKey } from '../../src/identity/api-keys/format.js';
import type { KeyStore } from '../../src/identity/api-keys/store.js';
import { SecurityEventBus, type SecurityEvent } from '../../src/observability/security-events.js';
import type { Gateway } from '../../src/gateway/gateway.js';
import { startUpstream, type TestUpstream, type EchoReply } from '../helpers/upstream.js';
import { config, get, startGateway } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';
import { captureLogger } from '../helpers/servers.js';
import { PEPPER, PG_URL, dropSchema, identityEnv, keyFromOutput, keyIdFromOutput, runCli, uniqueSchema } from '../helpers/keys.js';

let dir: string;
let db: string;
let up: TestUpstream;
let store: KeyStore;
let gw: Gateway;
let base: string;
const events: SecurityEvent[] = [];
const cap = captureLogger();
const pgSchema = uniqueSchema('pcl_import');

/** A key as Kong generates them: 32 hex characters. */
const kongKey = (): string => crypto.randomBytes(16).toString('hex');
const status = async (key: string, headers: Record<string, string> = {}): Promise<number> =>
  (await get(`${base}/api/x`, { headers: { 'x-api-key': key, ...headers } })).status;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'portcullis-keys-import-'));
  db = join(dir, 'keys.db');
  up = await startUpstream('a');
  store = openSqliteKeyStore(db);
  await store.createConsumer({ id: 'acme', scopes: ['orders:read'] });
  const bus = new SecurityEventBus();
  bus.subscribe((e) => events.push(e));
  const g = await startGateway(config({
    server: { trustedProxies: ['127.0.0.1'] },
    upstreams: { a: { targets: [{ url: up.url }] } },
    identity: { pepper: PEPPER, keyStore: { type: 'sqlite', path: db, refreshMs: 50 } },
    routes: [{ id: 'api', match: { pathPrefix: '/api' }, upstream: 'a', authentication: { methods: [{ apiKey: {} }], forward: { consumer: 'X-Consumer' } } }],
  }), { events: bus, logger: cap.logger });
  gw = g.gw;
  base = g.base;
});

after(async () => {
  await gw.close(0);
  await store.close();
  await up.close();
  rmSync(dir, { recursive: true, force: true });
  await dropSchema(pgSchema);
});

test('import from stdin, then use: refused as malformed before, accepted after; the upstream sees the consumer, never the key', async () => {
  const key = kongKey();
  assert.equal(await status(key), 401);
  assert.equal(events.at(-1)?.reason, 'api-key-malformed', 'no imported key yet: not even an HMAC');

  const r = await runCli(['keys', 'import', '--store', `sqlite:${db}`, '--consumer', 'acme', '--scopes', 'orders:write'], { input: `${key}\n` });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^key:\\s+…${key.slice(-4)} \\(imported\\)$`, 'm'));
  assert.ok(!r.stdout.includes(key) && !r.stdout.includes('hmac-sha256'), 'neither the key nor its hash is printed');
  const id = keyIdFromOutput(r.stdout);
  const row = await store.getKey(id);
  assert.equal(row?.hash, hashApiKey(PEPPER, key), 'only the peppered hash is stored');
  assert.equal(row?.imported, true);

  await waitFor(async () => (await status(key)) === 200, { timeoutMs: 3000, what: 'imported key accepted' });
  const seen = up.seen[up.seen.length - 1] as EchoReply;
  assert.equal(seen.headers['x-consumer'], 'acme');
  assert.ok(!JSON.stringify(seen).includes(key));
  // Authorization: ApiKey works the same
  assert.equal((await get(`${base}/api/x`, { headers: { authorization: `ApiKey ${key}` } })).status, 200);
  // an unknown key of the same shape is unknown, not malformed, now that imported keys exist
  assert.equal(await status(kongKey()), 401);
  assert.equal(events.at(-1)?.reason, 'api-key-unknown');
  // garbage is still refused before any look-up
  assert.equal(await status('short'), 401);
  assert.equal(events.at(-1)?.reason, 'api-key-malformed');

  const list = await runCli(['keys', 'list', '--store', `sqlite:${db}`, '--json']);
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual((JSON.parse(list.stdout) as { id: string; imported: boolean }[]).map((k) => [k.id, k.imported]), [[id, true]]);
});

test('--file, CIDR restriction, revocation and rotation work as for generated keys', async () => {
  const key = kongKey();
  const file = join(dir, 'legacy.key');
  writeFileSync(file, `${key}\n`, { mode: 0o600 });
  let r = await runCli(['keys', 'import', '--store', `sqlite:${db}`, '--consumer', 'acme', '--file', file, '--cidr', '10.9.9.0/24']);
  assert.equal(r.code, 0, r.stderr);
  const id = keyIdFromOutput(r.stdout);
  await waitFor(async () => (await status(key)) === 403, { timeoutMs: 3000, what: 'imported key known' });
  assert.equal(events.at(-1)?.reason, 'api-key-ip-not-allowed');
  assert.equal(await status(key, { 'x-forwarded-for': '10.9.9.7' }), 200);

  // rotate: a pcl_ key replaces it; the imported key keeps working during the overlap
  r = await runCli(['keys', 'rotate', id, '--store', `sqlite:${db}`, '--overlap', '1h']);
  assert.equal(r.code, 0, r.stderr);
  const next = keyFromOutput(r.stdout);
  await waitFor(async () => (await status(next, { 'x-forwarded-for': '10.9.9.7' })) === 200, { timeoutMs: 3000, what: 'rotated key accepted' });
  assert.equal(await status(key, { 'x-forwarded-for': '10.9.9.7' }), 200);
  assert.equal(await status(next), 403, 'the new key keeps the CIDR restriction');

  r = await runCli(['keys', 'revoke', id, '--store', `sqlite:${db}`]);
  assert.equal(r.code, 0, r.stderr);
  await waitFor(async () => (await status(key, { 'x-forwarded-for': '10.9.9.7' })) === 401, { timeoutMs: 3000, what: 'revocation seen' });
  assert.equal(events.at(-1)?.reason, 'api-key-revoked');
  assert.equal(events.at(-1)?.credentialId, id);
});

test('weak keys, keys on the command line and a second import of the same key are refused', async () => {
  const weak: [string, RegExp][] = [
    ['abc123', /too short: 6 characters, at least 20/],
    ['12345678901234567890123', /only one character class/],
    ['aaaaaaaaaaaaaaaaaaaaaaaaaaaa1', /bits per character/],
  ];
  for (const [key, why] of weak) {
    const r = await runCli(['keys', 'import', '--store', `sqlite:${db}`, '--consumer', 'acme'], { input: key });
    assert.equal(r.code, 1, key);
    assert.match(r.stderr, why);
    assert.match(r.stderr, /refusing to import the key from stdin/);
    assert.ok(!r.stderr.includes(key), 'the key is never echoed');
  }
  const argv = await runCli(['keys', 'import', kongKey(), '--store', `sqlite:${db}`, '--consumer', 'acme']);
  assert.equal(argv.code, 2, 'a key on the command line is a usage error');
  const key = kongKey();
  assert.equal((await runCli(['keys', 'import', '--store', `sqlite:${db}`, '--consumer', 'acme'], { input: key })).code, 0);
  const dup = await runCli(['keys', 'import', '--store', `sqlite:${db}`, '--consumer', 'acme'], { input: key });
  assert.equal(dup.code, 1);
  assert.match(dup.stderr, /a key with this hash already exists/);
});

test('keys list / show / revoke and consumers list work without the pepper (metadata only); create still needs it', async () => {
  const cfg = join(dir, 'gateway.yaml');
  writeFileSync(cfg, [
    'listeners: [{ name: http, address: 127.0.0.1, port: 8080 }]',
    'upstreams: { a: { targets: [{ url: "http://127.0.0.1:9000" }] } }',
    'identity:',
    '  pepper: ${PORTCULLIS_KEY_PEPPER}',
    `  keyStore: { type: sqlite, path: ${JSON.stringify(db)} }`,
    'routes: [{ id: api, match: { pathPrefix: / }, upstream: a, authentication: { methods: [{ apiKey: {} }] } }]',
    '',
  ].join('\n'));
  const noPepper = { env: { PORTCULLIS_KEY_PEPPER: undefined } };
  const list = await runCli(['keys', 'list', '-c', cfg, '--json'], noPepper);
  assert.equal(list.code, 0, list.stderr);
  const first = (JSON.parse(list.stdout) as { id: string }[])[0]!;
  const show = await runCli(['keys', 'show', first.id, '-c', cfg], noPepper);
  assert.equal(show.code, 0, show.stderr);
  const consumers = await runCli(['consumers', 'list', '-c', cfg], noPepper);
  assert.equal(consumers.code, 0, consumers.stderr);
  assert.match(consumers.stdout, /^acme\b/m);
  const create = await runCli(['keys', 'create', '--consumer', 'acme', '-c', cfg], noPepper);
  assert.equal(create.code, 1);
  assert.match(create.stderr, /environment variable "PORTCULLIS_KEY_PEPPER" is not set/);
});

test('PostgreSQL: import through the CLI, found by a gateway directory, revoked', async () => {
  const key = crypto.randomUUID();
  const spec = `${PG_URL}?schema=${pgSchema}`;
  const r = await runCli(['keys', 'import', '--store', spec, '--consumer', 'pg-acme', '--json'], { input: key });
  assert.equal(r.code, 0, r.stderr);
  const row = JSON.parse(r.stdout) as { id: string; imported: boolean; consumer: string };
  assert.equal(row.imported, true);
  const idx = await identityEnv({ pepper: PEPPER, keyStore: { type: 'postgres', url: PG_URL, schema: pgSchema, refreshMs: 50 } });
  try {
    await idx.ready();
    const dir = apiKeyDirectory(idx.env);
    assert.equal(dir.acceptsImported, true);
    assert.equal(dir.lookup(key)?.id, row.id);
    const pgStore = await openPostgresKeyStore({ url: PG_URL, schema: pgSchema });
    await pgStore.revokeKey(row.id);
    await pgStore.close();
    await waitFor(() => dir.lookup(key)?.revoked === true, { timeoutMs: 3000, what: 'revocation in the index' });
  } finally {
    await idx.close();
  }
});
