// Plain-HTTP listener modes: redirect (308 to https on a host the configuration knows, normalized path),
// reject (403), serve. Decided before routing: the upstream never sees a redirected or refused request.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Gateway } from '../../src/gateway/gateway.js';
import { silentLogger } from '../../src/observability/logger.js';
import { startScripted } from '../helpers/servers.js';
import { get, raw, statusOf } from '../helpers/gateway.js';

// An upstream that sets its own Strict-Transport-Security: the gateway alone decides that header.
const up = await startScripted('a', (_req, res, rec) => {
  res.writeHead(200, { 'content-type': 'application/json', 'strict-transport-security': 'max-age=5; preload' });
  res.end(JSON.stringify(rec));
});
const gw = await Gateway.start({
  listeners: [
    { name: 'redirect', address: '127.0.0.1', port: 0, plaintext: { mode: 'redirect', httpsPort: 8443 } },
    { name: 'redirect443', address: '127.0.0.1', port: 0, plaintext: { mode: 'redirect' } },
    { name: 'reject', address: '127.0.0.1', port: 0, plaintext: { mode: 'reject' } },
    { name: 'serve', address: '127.0.0.1', port: 0, plaintext: { mode: 'serve' } },
  ],
  upstreams: { a: { targets: [{ url: up.url }] } },
  routes: [
    { id: 'good', match: { hosts: ['good.example', 'API.Example.com:8080', '127.0.0.1'], pathPrefix: '/' }, upstream: 'a', websocket: true },
    { id: 'wild', match: { hosts: ['*.good'], pathPrefix: '/' }, upstream: 'a' },
    { id: 'any', match: { pathPrefix: '/' }, upstream: 'a' },
  ],
}, { logger: silentLogger, accessLog: false, status: false });
after(async () => { await gw.close(0); await up.close(); });

const port = (name: string): number => gw.address(name).port;
const head = (reply: string, name: string): string | undefined => {
  const m = new RegExp(`\\r\\n${name}: ([^\\r]*)\\r\\n`, 'i').exec(reply.slice(0, reply.indexOf('\r\n\r\n') + 2));
  return m?.[1];
};
const bodyOf = (reply: string): string => reply.slice(reply.indexOf('\r\n\r\n') + 4);
const req = (target: string, host: string, extra = ''): string => `GET ${target} HTTP/1.1\r\nHost: ${host}\r\n${extra}Connection: close\r\n\r\n`;

test('redirect: 308 to https on the configured port, normalized path re-encoded, query kept', async () => {
  const before = up.seen.length;
  const r = await raw(port('redirect'), req('/a/../b/./c%7e/caf%C3%A9%20x?q=1&r=%2F..%2F#', 'good.example').replace('#', ''));
  assert.equal(statusOf(r), 308);
  assert.equal(head(r, 'location'), 'https://good.example:8443/b/c~/caf%C3%A9%20x?q=1&r=%2F..%2F');
  assert.equal(head(r, 'content-length'), '0');
  assert.ok(head(r, 'x-request-id'));
  assert.equal(head(r, 'strict-transport-security'), undefined, 'never HSTS on plain HTTP');
  assert.equal(up.seen.length, before, 'no upstream contacted');
});

test('redirect: /a/../b goes to /b; default port 443 is omitted', async () => {
  const r = await raw(port('redirect443'), req('/a/../b', 'good.example:8080'));
  assert.equal(statusOf(r), 308);
  assert.equal(head(r, 'location'), 'https://good.example/b');
  const q = await get(`http://127.0.0.1:${port('redirect443')}/x?y=1`, { headers: { host: 'good.example' } });
  assert.equal(q.status, 308);
  assert.equal(q.headers.location, 'https://good.example/x?y=1');
});

test('redirect: host names are folded (case, trailing dot, port) and taken from config patterns', async () => {
  assert.equal(head(await raw(port('redirect'), req('/', 'API.EXAMPLE.COM.:9999')), 'location'), 'https://api.example.com:8443/');
  assert.equal(head(await raw(port('redirect'), req('/', 'x.y.good')), 'location'), 'https://x.y.good:8443/');
  assert.equal(head(await raw(port('redirect'), req('/', '127.0.0.1')), 'location'), 'https://127.0.0.1:8443/');
});

test('redirect: absolute-form targets use the same normalized path', async () => {
  const r = await raw(port('redirect'), req('http://good.example/p/../q?z', 'good.example'));
  assert.equal(statusOf(r), 308);
  assert.equal(head(r, 'location'), 'https://good.example:8443/q?z');
});

test('redirect: open-redirect attempts through Host get 400, never a Location', async () => {
  const before = up.seen.length;
  for (const [host, code] of [
    ['evil.example', 'unknown-host'],
    ['good.evil.example', 'unknown-host'], // *.good must not match good.evil.example
    ['evilgood', 'unknown-host'],
    ['good.example.evil.example', 'unknown-host'],
    ['good.example%2eevil', 'unknown-host'],
    ['a..good', 'unknown-host'],
    ['[::1]', 'unknown-host'],
    ['[::1]:8080', 'unknown-host'],
    ['[2001:db8::1]', 'unknown-host'],
    ['evil.example@good.example', 'bad-host'],
    ['good.example@evil.example', 'bad-host'],
    ['good.example/evil.example', 'bad-host'],
    ['good.example\\evil.example', 'bad-host'],
  ] as const) {
    const r = await raw(port('redirect'), req('/x', host));
    assert.equal(statusOf(r), 400, host);
    assert.equal(head(r, 'location'), undefined, host);
    assert.equal(head(r, 'content-type'), 'application/problem+json', host);
    assert.equal(JSON.parse(bodyOf(r)).type, `https://portcullis.dev/problems/${code}`, host);
  }
  // A CR inside the Host value never becomes a header: the parser refuses the request.
  const crlf = await raw(port('redirect'), 'GET /x HTTP/1.1\r\nHost: good.example\rLocation: https://evil.example\r\nConnection: close\r\n\r\n');
  assert.equal(statusOf(crlf), 400);
  assert.equal(head(crlf, 'location'), undefined);
  assert.equal(up.seen.length, before, 'no upstream contacted');
});

test('redirect: missing or duplicate Host and ambiguous paths are refused, not redirected', async () => {
  const noHost = await raw(port('redirect'), 'GET / HTTP/1.0\r\n\r\n');
  assert.equal(statusOf(noHost), 400);
  assert.equal(head(noHost, 'location'), undefined);
  const dup = await raw(port('redirect'), req('/', 'good.example', 'Host: evil.example\r\n'));
  assert.equal(statusOf(dup), 400);
  assert.equal(head(dup, 'location'), undefined);
  for (const target of ['/a%2fb', '/a/%2e%2e/%2e%2e/b%5c', '/..%2f', '//evil.example/x']) {
    const r = await raw(port('redirect'), req(target, 'good.example'));
    if (statusOf(r) === 308) {
      // '//x' normalizes to a path on the same host: never a scheme-relative (other host) location.
      assert.match(head(r, 'location') ?? '', /^https:\/\/good\.example:8443\/[^/]/, target);
    } else {
      assert.equal(statusOf(r), 400, target);
      assert.equal(head(r, 'location'), undefined, target);
    }
  }
});

test('redirect: a request with a body is redirected with connection: close', async () => {
  const r = await raw(port('redirect'), `POST /submit HTTP/1.1\r\nHost: good.example\r\nContent-Length: 5\r\n\r\nhelloGET /next HTTP/1.1\r\nHost: good.example\r\n\r\n`);
  assert.equal(statusOf(r), 308);
  assert.equal(head(r, 'connection'), 'close');
  assert.equal(r.split('HTTP/1.1 ').length - 1, 1, 'nothing after the body is answered');
});

test('redirect: WebSocket upgrades are refused (clients do not follow redirects)', async () => {
  const before = up.seen.length;
  const r = await raw(port('redirect'), 'GET /ws HTTP/1.1\r\nHost: good.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
  assert.equal(statusOf(r), 403);
  assert.equal(JSON.parse(bodyOf(r)).type, 'https://portcullis.dev/problems/https-required');
  assert.equal(up.seen.length, before);
});

test('reject: 403 problem+json, nothing proxied', async () => {
  const before = up.seen.length;
  const r = await get(`http://127.0.0.1:${port('reject')}/anything?x=1`, { headers: { host: 'good.example' } });
  assert.equal(r.status, 403);
  assert.equal(r.headers['content-type'], 'application/problem+json');
  assert.equal(r.headers.location, undefined);
  assert.equal(r.json().type, 'https://portcullis.dev/problems/https-required');
  assert.equal(r.headers['strict-transport-security'], undefined);
  const unknown = await get(`http://127.0.0.1:${port('reject')}/`, { headers: { host: 'evil.example' } });
  assert.equal(unknown.status, 403);
  assert.equal(up.seen.length, before);
});

test('serve: proxies as before; an upstream Strict-Transport-Security never reaches plain-HTTP clients', async () => {
  const r = await get(`http://127.0.0.1:${port('serve')}/hello?x=1`, { headers: { host: 'evil.example' } });
  assert.equal(r.status, 200);
  assert.equal(r.json<{ url: string }>().url, '/hello?x=1');
  assert.equal(r.headers.location, undefined);
  assert.equal(r.headers['strict-transport-security'], undefined);
});
