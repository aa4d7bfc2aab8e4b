// What the upstream receives and what the client gets back: path rewriting, header rewriting, hop-by-hop
// removal, Via, request ids, headers clients may not set, and the Host header.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, config, get } from '../helpers/gateway.js';
import { startScripted, startRawUpstream, rawRequest, type Recorded } from '../helpers/servers.js';

const up = await startScripted('up', (_req, res, rec) => {
  res.writeHead(200, {
    'content-type': 'application/json',
    'x-upstream': 'up',
    'x-frame-options': 'SAMEORIGIN',
    'set-cookie': ['a=1; Path=/'],
    via: '1.1 internal-lb',
  });
  res.end(JSON.stringify(rec));
});
// A response head full of hop-by-hop headers, some nominated by Connection.
const hop = await startRawUpstream((_head, socket) => {
  socket.write(
    'HTTP/1.1 200 OK\r\n' +
    'Connection: keep-alive, X-Hop-A, x-hop-b\r\n' +
    'X-Hop-A: 1\r\nX-Hop-B: 2\r\nX-Kept: yes\r\n' +
    'Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nProxy-Authenticate: Basic realm="x"\r\n' +
    'Trailer: X-Trail\r\nTransfer-Encoding: chunked\r\n' +
    'Content-Type: text/plain\r\n\r\n' +
    '5\r\nhello\r\n0\r\nX-Trail: t\r\n\r\n',
  );
});

const { gw, base, port } = await startGateway(config({
  upstreams: { up: { targets: [{ url: up.url }] }, hop: { targets: [{ url: hop.url }] } },
  routes: [
    { id: 'strip', match: { pathPrefix: '/api' }, upstream: 'up', stripPrefix: '/api' },
    { id: 'strip-ci', match: { pathPrefix: '/ci', caseInsensitive: true }, upstream: 'up', stripPrefix: '/ci' },
    { id: 'param', match: { path: '/users/:id' }, upstream: 'up', rewritePath: '/v2/people/:id' },
    { id: 'params', match: { path: '/orgs/:org/repos/:repo' }, upstream: 'up', rewritePath: '/r/:repo/of/:org' },
    { id: 'wild', match: { path: '/files/*' }, upstream: 'up', rewritePath: '/storage/*' },
    {
      id: 'headers', match: { pathPrefix: '/hdr' }, upstream: 'up',
      requestHeaders: { set: { 'X-Env': 'prod' }, add: { 'X-Added': 'gw' }, remove: ['X-Remove-Me'] },
      responseHeaders: { set: { 'X-Frame-Options': 'DENY' }, add: { 'Set-Cookie': 'gw=1; Path=/', 'X-Extra': 'e' }, remove: ['X-Upstream'] },
    },
    { id: 'host', match: { pathPrefix: '/host' }, upstream: 'up', preserveHost: true },
    { id: 'hop', match: { pathPrefix: '/hop' }, upstream: 'hop' },
    { id: 'all', match: { pathPrefix: '/' }, upstream: 'up' },
  ],
}));
after(async () => { await gw.close(0); await up.close(); await hop.close(); });

const last = (): Recorded => up.seen.at(-1)!;
const urlAt = async (path: string) => {
  const r = await get(`${base}${path}`);
  assert.equal(r.status, 200, `${path}: ${r.body}`);
  return (r.json() as unknown as Recorded).url;
};
/** all values of a header as the upstream received it (raw, in order) */
const rawValues = (rec: Recorded, name: string) => {
  const out: string[] = [];
  for (let i = 0; i < rec.rawHeaders.length; i += 2) if (rec.rawHeaders[i]!.toLowerCase() === name) out.push(rec.rawHeaders[i + 1]!);
  return out;
};

test('stripPrefix: /api/users -> /users, /api -> /, /api/ -> /, query kept', async () => {
  assert.equal(await urlAt('/api/users'), '/users');
  assert.equal(await urlAt('/api/users/7?x=1&y=%20'), '/users/7?x=1&y=%20');
  assert.equal(await urlAt('/api'), '/');
  assert.equal(await urlAt('/api/'), '/');
  assert.equal(await urlAt('/api?q=1'), '/?q=1');
  assert.equal(await urlAt('/apix'), '/apix', 'not a segment boundary: another route, nothing stripped');
});

test('stripPrefix on a case-insensitive route strips whatever case matched', async () => {
  assert.equal(await urlAt('/ci/users'), '/users');
  assert.equal(await urlAt('/CI/users'), '/users');
  assert.equal(await urlAt('/Ci'), '/');
});

test('rewritePath substitutes :params and *', async () => {
  assert.equal(await urlAt('/users/42'), '/v2/people/42');
  assert.equal(await urlAt('/users/42?fields=a,b'), '/v2/people/42?fields=a,b');
  assert.equal(await urlAt('/orgs/acme/repos/gw'), '/r/gw/of/acme');
  assert.equal(await urlAt('/files/a/b/c.txt'), '/storage/a/b/c.txt');
  assert.equal(await urlAt('/files'), '/storage/');
});

test('rewritePath re-encodes decoded parameters: they can never become a query, fragment or separator', async () => {
  assert.equal(await urlAt('/users/a%20b'), '/v2/people/a%20b');
  assert.equal(await urlAt('/users/%3Fadmin=1'), '/v2/people/%3Fadmin=1');
  assert.equal(await urlAt('/users/x%23y'), '/v2/people/x%23y');
  assert.equal(await urlAt('/users/%C3%A9'), '/v2/people/%C3%A9');
});

test('requestHeaders: set replaces the client value, add appends, remove drops', async () => {
  const r = await get(`${base}/hdr`, { headers: { 'x-env': 'dev', 'x-added': 'client', 'x-remove-me': 'secret', 'x-other': 'o' } });
  assert.equal(r.status, 200);
  const rec = last();
  assert.deepEqual(rawValues(rec, 'x-env'), ['prod']);
  assert.deepEqual(rawValues(rec, 'x-added'), ['client', 'gw']);
  assert.deepEqual(rawValues(rec, 'x-remove-me'), []);
  assert.deepEqual(rawValues(rec, 'x-other'), ['o']);
});

test('responseHeaders: set replaces, add appends (Set-Cookie stays a list), remove drops', async () => {
  const r = await get(`${base}/hdr`);
  assert.equal(r.headers['x-frame-options'], 'DENY');
  assert.deepEqual(r.headers['set-cookie'], ['a=1; Path=/', 'gw=1; Path=/']);
  assert.equal(r.headers['x-extra'], 'e');
  assert.equal(r.headers['x-upstream'], undefined);
  const plain = await get(`${base}/other`);
  assert.equal(plain.headers['x-frame-options'], 'SAMEORIGIN', 'other routes untouched');
  assert.equal(plain.headers['x-upstream'], 'up');
});

test('hop-by-hop request headers (fixed list and Connection-nominated) never reach the upstream', async () => {
  const r = await rawRequest(port, 'GET', '/hop-req', [
    ['Connection', 'close, X-Secret, x-other-hop'],
    ['X-Secret', '1'],
    ['X-Other-Hop', '2'],
    ['Keep-Alive', 'timeout=5'],
    ['Proxy-Connection', 'keep-alive'],
    ['TE', 'trailers'],
    ['Trailer', 'X-T'],
    ['Upgrade', 'h2c'],
    ['Proxy-Authorization', 'Basic Zm9vOmJhcg=='],
    ['X-Kept', 'yes'],
  ]);
  assert.equal(r.status, 200, r.body.toString());
  const rec = last();
  assert.equal(rec.url, '/hop-req');
  for (const h of ['x-secret', 'x-other-hop', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'proxy-authorization']) {
    assert.deepEqual(rawValues(rec, h), [], `${h} must not be forwarded`);
  }
  assert.ok(!/x-secret|h2c/i.test(rawValues(rec, 'connection').join()), 'Connection is the gateway\'s own');
  assert.deepEqual(rawValues(rec, 'x-kept'), ['yes']);
});

test('hop-by-hop response headers (fixed list and Connection-nominated) never reach the client', async () => {
  const r = await rawRequest(port, 'GET', '/hop');
  assert.equal(r.status, 200, r.head);
  for (const h of ['x-hop-a', 'x-hop-b', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'trailer', 'upgrade']) {
    assert.equal(r.headers[h], undefined, `${h} must not be forwarded`);
  }
  assert.ok(!/x-hop/i.test((r.headers.connection ?? []).join()), 'Connection is the gateway\'s own');
  assert.deepEqual(r.headers['x-kept'], ['yes']);
  assert.ok(r.body.toString().includes('hello'));
  assert.ok(!r.body.toString().includes('X-Trail'), 'upstream trailers are not relayed');
});

test('Via: our hop is appended to the request chain (RFC 9110 7.6.3); the upstream\'s Via is replaced so backend hops do not leak', async () => {
  const r = await get(`${base}/via`, { headers: { via: '1.0 client-proxy' } });
  assert.equal(r.headers.via, '1.1 portcullis');
  assert.deepEqual(rawValues(last(), 'via'), ['1.0 client-proxy, 1.1 portcullis']);
  await get(`${base}/via`);
  assert.deepEqual(rawValues(last(), 'via'), ['1.1 portcullis']);
});

test('X-Request-Id: generated, returned to the client and forwarded; an untrusted incoming id is replaced', async () => {
  const r1 = await get(`${base}/rid`);
  const id = r1.headers['x-request-id'];
  assert.ok(typeof id === 'string' && /^[A-Za-z0-9_-]{16}-[0-9a-z]+$/.test(id));
  assert.deepEqual(rawValues(last(), 'x-request-id'), [id]);

  const r2 = await get(`${base}/rid`, { headers: { 'x-request-id': 'client-chosen-id' } });
  const id2 = r2.headers['x-request-id'];
  assert.notEqual(id2, 'client-chosen-id');
  assert.notEqual(id2, id, 'unique per request');
  assert.deepEqual(rawValues(last(), 'x-request-id'), [id2], 'exactly one id upstream: the gateway\'s');
});

test('an incoming X-Request-Id from a trusted proxy is kept (but not when it is not a safe token)', async () => {
  const t = await startGateway(config({
    server: { trustedProxies: ['127.0.0.1'] },
    upstreams: { up: { targets: [{ url: up.url }] } },
    routes: [{ id: 'all', match: { pathPrefix: '/' }, upstream: 'up' }],
  }));
  try {
    const r = await get(`${t.base}/rid`, { headers: { 'x-request-id': 'edge-1234' } });
    assert.equal(r.headers['x-request-id'], 'edge-1234');
    assert.deepEqual(rawValues(last(), 'x-request-id'), ['edge-1234']);
    const bad = await get(`${t.base}/rid`, { headers: { 'x-request-id': 'x"}{"level":"fatal' } });
    assert.notEqual(bad.headers['x-request-id'], 'x"}{"level":"fatal');
  } finally {
    await t.gw.close(0);
  }
});

test('routing-override and forwarding headers from clients never reach the upstream', async () => {
  const r = await get(`${base}/public`, {
    headers: {
      'x-original-url': '/admin', 'x-rewrite-url': '/admin', 'x-original-uri': '/admin', 'x-override-url': '/admin',
      'x-http-method-override': 'DELETE', 'x-http-method': 'DELETE', 'x-method-override': 'DELETE',
      'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https', 'x-forwarded-port': '443', 'x-forwarded-prefix': '/admin',
      'x-real-ip': '6.6.6.6',
    },
  });
  assert.equal(r.status, 200);
  const rec = last();
  for (const h of ['x-original-url', 'x-rewrite-url', 'x-original-uri', 'x-override-url', 'x-http-method-override', 'x-http-method', 'x-method-override', 'x-forwarded-port', 'x-forwarded-prefix', 'x-real-ip']) {
    assert.deepEqual(rawValues(rec, h), [], h);
  }
  assert.deepEqual(rawValues(rec, 'x-forwarded-host'), [`127.0.0.1:${port}`]);
  assert.deepEqual(rawValues(rec, 'x-forwarded-proto'), ['http']);
  assert.equal(rec.method, 'GET');
  assert.equal(rec.url, '/public');
});

test('Host: the target host by default, the client host with preserveHost', async () => {
  await get(`${base}/plain`, { headers: { host: 'api.example.com' } });
  assert.deepEqual(rawValues(last(), 'host'), [`127.0.0.1:${up.port}`]);
  assert.deepEqual(rawValues(last(), 'x-forwarded-host'), ['api.example.com']);
  await get(`${base}/host/x`, { headers: { host: 'api.example.com' } });
  assert.deepEqual(rawValues(last(), 'host'), ['api.example.com']);
  assert.deepEqual(rawValues(last(), 'x-forwarded-host'), ['api.example.com']);
});
