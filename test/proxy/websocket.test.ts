// WebSocket pass-through: only routes with `websocket: true` upgrade; the upgrade carries the gateway's
// forwarding headers; frames flow both ways; a refused upgrade never reaches the upstream.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { startGateway, config } from '../helpers/gateway.js';
import { closedPort } from '../helpers/servers.js';
import { waitFor, within } from '../helpers/wait.js';

const upgrades: http.IncomingMessage[] = [];
const server = http.createServer((_req, res) => { res.writeHead(200); res.end('plain'); });
const wss = new WebSocketServer({ noServer: true });
server.on('upgrade', (req, socket, head) => {
  upgrades.push(req);
  if (req.url === '/deny') { socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\nX-Internal: 1\r\n\r\nforbidden'); return; }
  if (req.url === '/boom') { socket.end('HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\n\r\ntrace'); return; }
  wss.handleUpgrade(req, socket, head, (ws) => {
    ws.on('message', (data, isBinary) => ws.send(isBinary ? data : `echo:${data.toString()}`, { binary: isBinary }));
  });
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const upUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

const dead = await closedPort();
const { gw, port } = await startGateway(config({
  upstreams: { ws: { targets: [{ url: upUrl }] }, dead: { targets: [{ url: `http://127.0.0.1:${dead}` }] } },
  routes: [
    { id: 'dead', match: { pathPrefix: '/dead' }, upstream: 'dead', websocket: true },
    { id: 'ws', match: { pathPrefix: '/ws' }, upstream: 'ws', websocket: true, stripPrefix: '/ws' },
    { id: 'limited', match: { pathPrefix: '/limited' }, upstream: 'ws', websocket: true, rateLimit: { limits: [{ name: 'upgrades', limit: 1, windowMs: 60_000 }] } },
    { id: 'plain', match: { pathPrefix: '/' }, upstream: 'ws' },
  ],
}));
const sockets: WebSocket[] = [];
after(async () => {
  for (const s of sockets) s.terminate();
  for (const c of wss.clients) c.terminate();
  await gw.close(0);
  await new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); });
});

function connect(path: string, headers?: Record<string, string>): WebSocket {
  const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers });
  sockets.push(ws);
  return ws;
}

test('route with websocket: true: upgrade succeeds and messages flow both ways', async () => {
  const ws = connect('/ws/chat?room=1', { 'x-forwarded-for': '6.6.6.6', 'x-request-id': 'spoofed' });
  const upgraded = new Promise<http.IncomingMessage>((resolve, reject) => { ws.once('upgrade', resolve); ws.once('error', reject); });
  const opened = new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  const res = await within(upgraded, 3000, 'upgrade');
  await within(opened, 3000, 'open');
  assert.ok(typeof res.headers['x-request-id'] === 'string' && res.headers['x-request-id'] !== 'spoofed');

  const replies: string[] = [];
  ws.on('message', (d) => replies.push(d.toString()));
  ws.send('hello');
  ws.send('world');
  await waitFor(() => replies.length === 2, { what: 'two echoes' });
  assert.deepEqual(replies, ['echo:hello', 'echo:world']);

  const binary = Buffer.from([0, 1, 2, 255]);
  const got = new Promise<Buffer>((r) => ws.once('message', (d) => r(d as Buffer)));
  ws.send(binary);
  assert.deepEqual(await within(got, 3000, 'binary echo'), binary);

  const req = upgrades.at(-1)!;
  assert.equal(req.url, '/chat?room=1', 'path rewriting applies to upgrades');
  assert.equal(req.headers['x-forwarded-for'], '127.0.0.1');
  assert.equal(req.headers['x-request-id'], res.headers['x-request-id']);
  assert.equal(req.headers.via, '1.1 portcullis');

  const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
  ws.close(1000, 'bye');
  assert.equal(await within(closed, 3000, 'close'), 1000);
});

test('route without websocket: upgrade refused with 400 and the upstream never sees it', async () => {
  const before = upgrades.length;
  const ws = connect('/chat');
  const status = await within(new Promise<number>((resolve, reject) => {
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.once('open', () => reject(new Error('upgrade should have been refused')));
    ws.once('error', () => undefined);
  }), 3000, 'refusal');
  assert.equal(status, 400);
  assert.equal(upgrades.length, before);
});

test('an unknown path is refused before reaching any upstream', async () => {
  const before = upgrades.length;
  const g2 = await startGateway(config({
    upstreams: { ws: { targets: [{ url: upUrl }] } },
    routes: [{ id: 'ws', match: { path: '/only' }, upstream: 'ws', websocket: true }],
  }));
  try {
    const ws = new WebSocket(`ws://127.0.0.1:${g2.port}/other`);
    sockets.push(ws);
    const status = await within(new Promise<number>((resolve) => {
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.once('error', () => resolve(-1));
    }), 3000, 'refusal');
    assert.equal(status, 404);
    assert.equal(upgrades.length, before);
  } finally {
    await g2.gw.close(0);
  }
});

function refusal(path: string): Promise<number> {
  const ws = connect(path);
  return within(new Promise<number>((resolve, reject) => {
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.once('open', () => reject(new Error('upgrade should have been refused')));
    ws.once('error', () => undefined);
  }), 3000, `refusal of ${path}`);
}

test('upstream refusing the upgrade: 4xx passed on, 5xx becomes 502; a dead target is 502', async () => {
  assert.equal(await refusal('/ws/deny'), 403);
  assert.equal(await refusal('/ws/boom'), 502);
  assert.equal(await refusal('/dead/x'), 502);
});

test('a rate-limited upgrade gets the same 429 as a plain request: Retry-After, RateLimit headers, problem body', async () => {
  const first = connect('/limited/a');
  await within(new Promise((resolve, reject) => { first.once('open', resolve); first.once('error', reject); }), 3000, 'first upgrade');
  const before = upgrades.length;
  const ws = connect('/limited/b');
  const res = await within(new Promise<http.IncomingMessage>((resolve, reject) => {
    ws.once('unexpected-response', (_req, r) => resolve(r));
    ws.once('open', () => reject(new Error('the second upgrade should have been limited')));
    ws.once('error', () => undefined);
  }), 3000, 'refusal');
  assert.equal(res.statusCode, 429);
  assert.equal(res.headers['content-type'], 'application/problem+json');
  const retry = Number(res.headers['retry-after']);
  assert.ok(retry >= 1 && retry <= 60, String(res.headers['retry-after']));
  assert.equal(res.headers['ratelimit-policy'], '"upgrades";q=1;w=60');
  assert.match(String(res.headers.ratelimit), /^"upgrades";r=0;t=\d+$/);
  let body = '';
  for await (const chunk of res) body += String(chunk);
  const problem = JSON.parse(body) as { status: number; retry_after: number; request_id: string };
  assert.equal(problem.status, 429);
  assert.equal(problem.retry_after, retry);
  assert.equal(problem.request_id, res.headers['x-request-id']);
  assert.equal(upgrades.length, before, 'the limited upgrade never reached the upstream');
});
