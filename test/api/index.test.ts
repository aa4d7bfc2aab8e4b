// The programmatic API (src/index.ts, package.json `main`): start from an object or a file, proxy, reload,
// stop; a bad configuration rejects with every problem listed as file:line:col: path: reason.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import { startGateway, validateConfig, ConfigError, STAGES, type GatewayConfig, type RunningGateway, type StageModule } from '../../src/index.js';
import { silentLogger } from '../../src/observability/logger.js';
import { startUpstream, type TestUpstream, type EchoReply } from '../helpers/upstream.js';
import { get } from '../helpers/gateway.js';
import { tempDir } from '../helpers/tmp.js';

let up: TestUpstream;
before(async () => { up = await startUpstream('echo'); });
after(async () => { await up.close(); });

const opts = { logger: silentLogger, status: false, accessLog: false } as const;

const objectConfig = (prefix: string): GatewayConfig => ({
  listeners: [{ name: 'main', address: '127.0.0.1', port: 0 }],
  upstreams: { echo: { targets: [{ url: up.url }] } },
  routes: [{ id: 'r', match: { pathPrefix: prefix }, upstream: 'echo' }],
});

test('startGateway from an object: proxies, reloads with a changed route, stops', async () => {
  const gw: RunningGateway = await startGateway(objectConfig('/a'), opts);
  let stopped = false;
  try {
    const { port, address } = gw.address('main');
    assert.equal(address, '127.0.0.1');
    assert.ok(port > 0);
    const base = `http://127.0.0.1:${port}`;
    const r = await get(`${base}/a/x`);
    assert.equal(r.status, 200);
    assert.equal(r.json<EchoReply>().url, '/a/x');
    assert.equal((await get(`${base}/b/x`)).status, 404);

    await gw.reload(objectConfig('/b'));
    assert.equal(gw.address('main').port, port, 'an unchanged listener keeps its port');
    assert.equal((await get(`${base}/a/x`)).status, 404);
    const r2 = await get(`${base}/b/x`);
    assert.equal(r2.status, 200);
    assert.equal(r2.json<EchoReply>().url, '/b/x');

    // a bad reload is refused and the running configuration stays
    const bad = { ...objectConfig('/c'), routes: [{ id: 'r', match: { pathPrefix: '/c' }, upstream: 'nope' }] };
    await assert.rejects(gw.reload(bad), (e: unknown) => e instanceof ConfigError && /routes\[0\]\.upstream/.test(e.message));
    assert.equal((await get(`${base}/b/x`)).status, 200);

    await gw.stop();
    stopped = true;
    await assert.rejects(get(`${base}/b/x`), 'nothing listens after stop()');
  } finally {
    if (!stopped) await gw.stop(0);
  }
});

test('startGateway from a YAML file path', async (t) => {
  const dir = tempDir('portcullis-api-', t);
  const file = join(dir, 'gateway.yaml');
  writeFileSync(file, [
    'listeners: [{ name: main, address: 127.0.0.1, port: 0 }]',
    `upstreams: { echo: { targets: [{ url: "\${ECHO_URL}" }] } }`,
    'routes:',
    '  - id: r',
    '    match: { pathPrefix: /y }',
    '    upstream: echo',
    '',
  ].join('\n'));
  const gw = await startGateway(file, { ...opts, env: { ECHO_URL: up.url } });
  try {
    const r = await get(`http://127.0.0.1:${gw.address('main').port}/y/1`);
    assert.equal(r.status, 200);
    assert.equal(r.json<EchoReply>().url, '/y/1');
    assert.throws(() => gw.address('other'), /no listener named other/);
  } finally {
    await gw.stop(0);
  }
});

test('a bad configuration rejects with a readable message (file:line:col: path: reason)', async (t) => {
  const dir = tempDir('portcullis-api-', t);
  const file = join(dir, 'bad.yaml');
  writeFileSync(file, [
    'listeners: [{ name: main, address: 127.0.0.1, port: 0 }]',
    'routes:',
    '  - id: r',
    '    match: { pathPrefix: /y }',
    '    upstream: missing',
    '',
  ].join('\n'));
  await assert.rejects(startGateway(file, opts), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.ok(e instanceof Error);
    assert.match(e.message, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:5:15: routes\\[0\\]\\.upstream: `));
    assert.ok(e.issues.length >= 1);
    return true;
  });
  // an object: no file, no position, same issue list
  const obj = { listeners: [{ name: 'main', port: 0 }], routes: [{ id: 'r', match: { pathPrefix: '/' }, upstream: 'missing' }] } as GatewayConfig;
  await assert.rejects(startGateway(obj, opts), /<config>: routes\[0\]\.upstream: /);
  const v = validateConfig(obj);
  assert.equal(v.ok, false);
});

test('STAGES is the built-in registry, in order', () => {
  assert.ok(STAGES.length > 5);
  const orders = STAGES.map((s) => s.order);
  assert.deepEqual(orders, [...orders].sort((a, b) => a - b));
});

test('an embedder adds a stage: options.stages = [...STAGES, mine] (the docs example)', async () => {
  const schema = Type.Object({});
  const tagged: StageModule<'tagged', typeof schema> = {
    name: 'tagged', order: 210, configKey: 'tagged', schema, always: true,
    upgrades: 'skip', docs: 'docs/programmatic-api.md',
    check: () => [],
    compile: (_cfg, env) => (env.route.id === 'r' ? { onResponse: (_ctx, _status, headers) => headers.set('x-tagged', '1') } : null),
  };
  const gw = await startGateway(objectConfig('/t'), { ...opts, stages: [...STAGES, tagged] });
  try {
    const r = await get(`http://127.0.0.1:${gw.address('main').port}/t/1`);
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-tagged'], '1');
  } finally {
    await gw.stop(0);
  }
});
