// Access log through the real gateway: one JSON line per exchange with the fields operators rely on,
// and no secret from headers or query ever written to the file.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway, config, get } from '../helpers/gateway.js';
import { startScripted, rawRequest } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'portcullis-access-'));
const file = join(dir, 'access.log');
const up = await startScripted('up');
const { gw, base, port } = await startGateway(config({
  upstreams: { up: { targets: [{ url: up.url }] } },
  routes: [
    { id: 'api', match: { pathPrefix: '/api' }, upstream: 'up' },
    { id: 'deny', match: { path: '/admin' }, respond: { status: 403 } },
  ],
  accessLog: { destination: file, includeHeaders: ['authorization', 'cookie', 'user-agent', 'x-api-key', 'x-session-id', 'X-Auth-User', 'x-csrf-token', 'x-client-secret', 'x-db-password', 'x-passwd', 'x-my-apikey', 'x-my-api_key', 'x-credentials', 'cookie2', 'accept-language', 'x-tenant'], redactQuery: ['session'] },
}), { accessLog: true });
after(async () => { await gw.close(0); await up.close(); rmSync(dir, { recursive: true, force: true }); });

const SECRETS = ['s3cr3t-bearer-token', 's3cr3t-cookie', 's3cr3t-query', 's3cr3t-apikey', 's3cr3t-session', 's3cr3t-upper', 's3cr3t-named'];
/** custom headers whose names say they carry secrets (redacted although no config names them) */
const NAMED_SECRETS = ['x-session-id', 'x-auth-user', 'x-csrf-token', 'x-client-secret', 'x-db-password', 'x-passwd', 'x-my-apikey', 'x-my-api_key', 'x-credentials', 'cookie2'];
type Line = Record<string, unknown> & { headers?: Record<string, string> };

test('access log: secrets redacted everywhere, fields present, blocked requests carry block_reason', async () => {
  const ok = await get(`${base}/api/items?token=s3cr3t-query&x=1&SESSION=s3cr3t-session&Token=s3cr3t-upper`, {
    headers: {
      authorization: 'Bearer s3cr3t-bearer-token', cookie: 's=s3cr3t-cookie', 'user-agent': 'test-agent/1.0', 'x-api-key': 's3cr3t-apikey',
      ...Object.fromEntries(NAMED_SECRETS.map((h) => [h, 's3cr3t-named'])), 'accept-language': 'fr-CH', 'x-tenant': 'acme',
    },
  });
  assert.equal(ok.status, 200);
  const okId = ok.headers['x-request-id'];
  const denied = await get(`${base}/admin`, { headers: { authorization: 'Bearer s3cr3t-bearer-token' } });
  assert.equal(denied.status, 403);
  const missing = await get(`${base}/nowhere?token=s3cr3t-query`);
  assert.equal(missing.status, 404);
  const bad = await rawRequest(port, 'GET', '/api/..;/admin?token=s3cr3t-query', [['Cookie', 'x=s3cr3t-cookie']]);
  assert.equal(bad.status, 400);

  await gw.close(0); // flushes the (asynchronous) log
  const text = await waitFor(() => {
    if (!existsSync(file)) return undefined;
    const t = readFileSync(file, 'utf8');
    return t.split('\n').filter(Boolean).length >= 4 ? t : undefined;
  }, { what: 'four access log lines' });

  for (const s of SECRETS) assert.ok(!text.includes(s), `secret ${s} written to the access log`);
  const lines = text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line);
  assert.equal(lines.length, 4);

  const l = lines.find((x) => x.request_id === okId)!;
  assert.ok(l, 'line for the proxied request, keyed by the request id the client got');
  assert.equal(l.type, 'access');
  assert.equal(l.client_ip, '127.0.0.1');
  assert.equal(l.method, 'GET');
  assert.equal(l.path, '/api/items');
  assert.equal(l.query, 'token=[REDACTED]&x=1&SESSION=[REDACTED]&Token=[REDACTED]');
  assert.equal(l.route, 'api');
  assert.equal(l.status, 200);
  assert.equal(l.bytes_out, Buffer.byteLength(ok.body));
  assert.equal(typeof l.bytes_in, 'number');
  assert.ok(typeof l.duration_ms === 'number' && l.duration_ms >= 0);
  assert.equal(l.upstream, up.url);
  assert.equal(l.block_reason, undefined);
  assert.deepEqual(l.headers, {
    authorization: '[REDACTED]', cookie: '[REDACTED]', 'user-agent': 'test-agent/1.0', 'x-api-key': '[REDACTED]',
    ...Object.fromEntries(NAMED_SECRETS.map((h) => [h, '[REDACTED]'])),
    'accept-language': 'fr-CH', 'x-tenant': 'acme', // ordinary headers are logged as sent
  });

  const d = lines.find((x) => x.request_id === denied.headers['x-request-id'])!;
  assert.equal(d.status, 403);
  assert.equal(d.route, 'deny');
  assert.equal(d.headers?.authorization, '[REDACTED]');

  const m = lines.find((x) => x.request_id === missing.headers['x-request-id'])!;
  assert.equal(m.status, 404);
  assert.equal(m.block_reason, 'no-route');
  assert.equal(m.query, 'token=[REDACTED]');

  const b = lines.find((x) => x.status === 400)!;
  assert.equal(b.block_reason, 'bad-path');
  assert.equal(b.headers?.cookie, '[REDACTED]');
});
