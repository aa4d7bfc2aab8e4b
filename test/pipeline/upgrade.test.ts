// WebSocket upgrades go through the same runner as plain requests: stages with `upgrades: 'run'` run
// before the tunnel (their refusal is the raw answer on the socket, their onDone runs when the tunnel
// closes), 'skip' stages do not, a throwing stage is a 500 and a log line, 'incompatible' stages are a
// config error, and the access log has one line per upgrade.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { WebSocket, WebSocketServer } from 'ws';
import { startGateway, config, get } from '../helpers/gateway.js';
import { captureLogger } from '../helpers/servers.js';
import { testStage, withBlocks } from '../helpers/stages.js';
import { waitFor, within } from '../helpers/wait.js';
import { STAGES } from '../../src/pipeline/registry.js';
import { checkSemantics } from '../../src/config/semantic.js';
import type { RouteConfig } from '../../src/config/schema.js';

const upgrades: string[] = [];
const server = http.createServer((_req, res) => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('plain'); });
const wss = new WebSocketServer({ noServer: true });
server.on('upgrade', (req, socket, head) => {
  upgrades.push(req.url ?? '');
  wss.handleUpgrade(req, socket, head, (ws) => { ws.on('message', (d) => ws.send(`echo:${d.toString()}`)); });
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const upUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

/** request URLs whose exchange ended, as the 'run' stage's onDone saw them */
const authDone: string[] = [];
const skipCalls: string[] = [];
const auth = testStage({
  name: 'test-ws-auth', order: 10, configKey: 'testWsAuth', upgrades: 'run',
  compile: () => ({
    onRequest: (ctx) => (ctx.req.headers['x-token'] === 'let-me-in' ? undefined
      : { status: 401, code: 'unauthorized', detail: 'token required', headers: { 'www-authenticate': 'Bearer realm="ws"' } }),
    onDone: (ctx) => { authDone.push(ctx.req.url ?? ''); },
  }),
});
const skip = testStage({
  name: 'test-ws-skip', order: 11, configKey: 'testWsSkip', upgrades: 'skip',
  compile: () => ({
    onRequest: (ctx) => { skipCalls.push(ctx.req.url ?? ''); return { status: 403, code: 'plain-only-refusal' }; },
    onDone: () => { skipCalls.push('done'); },
  }),
});
const thrower = testStage({
  name: 'test-ws-throw', order: 12, configKey: 'testWsThrow', upgrades: 'run',
  compile: () => ({ onRequest: () => { throw new Error('stage exploded'); } }),
});

const dir = mkdtempSync(join(tmpdir(), 'portcullis-upgrade-'));
const logFile = join(dir, 'access.log');
const cap = captureLogger();
const ws = (id: string, blocks: Record<string, unknown>): RouteConfig =>
  withBlocks({ id, match: { pathPrefix: `/${id}` }, upstream: 'ws', websocket: true } as RouteConfig, blocks);
const { gw, port, base } = await startGateway(config({
  upstreams: { ws: { targets: [{ url: upUrl }] } },
  routes: [
    ws('auth', { testWsAuth: {} }),
    ws('skip', { testWsSkip: {} }),
    ws('throw', { testWsThrow: {} }),
  ],
  accessLog: { destination: logFile },
}), { stages: [...STAGES, auth, skip, thrower], logger: cap.logger, accessLog: true });
const sockets: WebSocket[] = [];
after(async () => {
  for (const s of sockets) s.terminate();
  for (const c of wss.clients) c.terminate();
  await gw.close(0);
  await new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); });
  rmSync(dir, { recursive: true, force: true });
});

function connect(path: string, headers?: Record<string, string>): WebSocket {
  const s = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers });
  sockets.push(s);
  return s;
}
function refused(s: WebSocket): Promise<{ res: http.IncomingMessage; body: string }> {
  return within(new Promise((resolve, reject) => {
    s.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve({ res, body }));
      res.on('error', () => resolve({ res, body }));
    });
    s.once('open', () => reject(new Error('the upgrade should have been refused')));
    s.once('error', () => undefined);
  }), 5000, 'refusal');
}
function opened(s: WebSocket): Promise<http.IncomingMessage> {
  return within(new Promise((resolve, reject) => { s.once('upgrade', resolve); s.once('error', reject); s.once('unexpected-response', (_q, r) => reject(new Error(`refused with ${r.statusCode}`))); }), 5000, 'upgrade');
}
async function roundTrip(s: WebSocket): Promise<void> {
  await within(new Promise((r) => (s.readyState === WebSocket.OPEN ? r(undefined) : s.once('open', r))), 5000, 'open');
  const got = new Promise<string>((r) => s.once('message', (d) => r(d.toString())));
  s.send('ping');
  assert.equal(await within(got, 5000, 'echo'), 'echo:ping');
}
function logLines(): Record<string, unknown>[] {
  if (!existsSync(logFile)) return [];
  return readFileSync(logFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
}

test("a 'run' stage refusing the upgrade: the client gets the raw 401 with the stage's header, the upstream nothing", async () => {
  const before = upgrades.length;
  const { res, body } = await refused(connect('/auth/x'));
  assert.equal(res.statusCode, 401);
  assert.equal(res.headers['www-authenticate'], 'Bearer realm="ws"');
  assert.equal(res.headers['content-type'], 'application/problem+json');
  assert.match(String((JSON.parse(body) as { type: string }).type), /unauthorized$/);
  assert.equal(typeof res.headers['x-request-id'], 'string');
  assert.equal(upgrades.length, before);
});

test("onDone of a 'run' stage runs once when the tunnel closes", async () => {
  const s = connect('/auth/chat', { 'x-token': 'let-me-in' });
  await opened(s);
  await roundTrip(s);
  await delay(100);
  assert.deepEqual(authDone.filter((u) => u === '/auth/chat'), [], 'onDone ran while the tunnel was open');
  const closed = new Promise((r) => s.once('close', r));
  s.close(1000, 'bye');
  await within(closed, 5000, 'close');
  await waitFor(() => authDone.includes('/auth/chat'), { what: 'onDone after the tunnel closed', timeoutMs: 5000 });
  await delay(100);
  assert.equal(authDone.filter((u) => u === '/auth/chat').length, 1, 'onDone ran more than once');
});

test("a 'skip' stage does not run for the upgrade (but does for a plain request on the route)", async () => {
  skipCalls.length = 0;
  const s = connect('/skip/room');
  await opened(s);
  await roundTrip(s);
  s.close();
  await within(new Promise((r) => s.once('close', r)), 5000, 'close');
  await delay(100);
  assert.deepEqual(skipCalls, []);
  const plain = await get(`${base}/skip/plain`);
  assert.equal(plain.status, 403);
  assert.deepEqual(skipCalls, ['/skip/plain', 'done']);
});

test('a stage that throws on an upgrade: 500 and a log line naming the failure', async () => {
  const before = upgrades.length;
  const { res } = await refused(connect('/throw/x'));
  assert.equal(res.statusCode, 500);
  assert.equal(upgrades.length, before);
  const line = await waitFor(() => cap.lines.find((l) => l.msg === 'stage failed'), { what: 'the stage failure log line', timeoutMs: 5000 });
  assert.equal(line.upgrade, true);
  assert.equal(line.route, 'throw');
  assert.match(JSON.stringify(line.err), /stage exploded/);
});

test('checkSemantics: websocket: true + cache is an error at routes[0].cache', () => {
  const issues = checkSemantics(config({
    upstreams: { ws: { targets: [{ url: upUrl }] } },
    routes: [{ id: 'ws', match: { pathPrefix: '/' }, upstream: 'ws', websocket: true, cache: { ttlSeconds: 5 } }],
  }));
  const hit = issues.find((i) => i.path === 'routes[0].cache');
  assert.ok(hit, `no issue at routes[0].cache in ${JSON.stringify(issues)}`);
  assert.equal(hit.severity, 'error');
  // and not without the websocket flag
  const ok = checkSemantics(config({
    upstreams: { ws: { targets: [{ url: upUrl }] } },
    routes: [{ id: 'ws', match: { pathPrefix: '/' }, upstream: 'ws', cache: { ttlSeconds: 5 } }],
  }));
  assert.equal(ok.find((i) => i.path === 'routes[0].cache' && i.severity === 'error'), undefined);
});

test('the access log has exactly one line per upgrade (a tunnel, a refusal)', async () => {
  const s = connect('/auth/logged', { 'x-token': 'let-me-in' });
  const up = await opened(s);
  const tunnelId = String(up.headers['x-request-id']);
  await roundTrip(s);
  s.close();
  await within(new Promise((r) => s.once('close', r)), 5000, 'close');
  const { res } = await refused(connect('/auth/denied'));
  const refusedId = String(res.headers['x-request-id']);
  await waitFor(() => {
    const ids = logLines().map((l) => l.request_id);
    return ids.includes(tunnelId) && ids.includes(refusedId);
  }, { what: 'access log lines of both upgrades', timeoutMs: 10_000 });
  await delay(300);
  const lines = logLines();
  assert.equal(lines.filter((l) => l.request_id === tunnelId).length, 1, 'tunnel logged once');
  assert.equal(lines.filter((l) => l.request_id === refusedId).length, 1, 'refusal logged once');
  const refusedLine = lines.find((l) => l.request_id === refusedId)!;
  assert.equal(refusedLine.status, 401);
});
