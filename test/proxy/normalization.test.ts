// Path normalization end to end: hostile request targets either land where their canonical form says
// (never on the route they pretend to address) or are refused, and the upstream only ever receives the
// canonical path, with the query string untouched.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, config } from '../helpers/gateway.js';
import { startScripted, rawRequest } from '../helpers/servers.js';

const a = await startScripted('a');
const { gw, port } = await startGateway(config({
  upstreams: { a: { targets: [{ url: a.url }] } },
  routes: [
    { id: 'public', match: { path: '/public/*' }, upstream: 'a' },
    { id: 'admin', match: { path: '/admin' }, respond: { status: 403, body: 'admin is off limits' } },
  ],
}));
after(async () => { await gw.close(0); await a.close(); });

type Where = 'admin' | 'bad-request' | 'no-route' | { upstream: string };
const ADMIN = 'admin';
const cases: [target: string, where: Where][] = [
  ['/public/../admin', ADMIN],
  ['/public/./../admin', ADMIN],
  ['/%2e%2e/admin', ADMIN],
  ['/%2E%2E/admin', ADMIN],
  ['/public/%2e%2e/admin', ADMIN],
  ['/public/.%2e/admin', ADMIN],
  ['/public/x/../../admin', ADMIN],
  ['/../../../admin', ADMIN],
  ['//admin', ADMIN],
  ['///admin', ADMIN],
  ['/./admin', ADMIN],
  ['/admin?redirect=/public', ADMIN],
  ['/%61dmin', ADMIN],
  ['http://gw.test/public/../admin', ADMIN],
  ['/public/..;/admin', 'bad-request'],
  ['/public/.;/admin', 'bad-request'],
  ['/public/..;x=1/admin', 'bad-request'],
  ['/public%2f..%2fadmin', 'bad-request'],
  ['/public%2F..%2Fadmin', 'bad-request'],
  ['/public/..%2fadmin', 'bad-request'],
  ['/public/%252e%252e/admin', 'bad-request'],
  ['/public/%252fadmin', 'bad-request'],
  ['/public/..%5cadmin', 'bad-request'],
  ['/public\\..\\admin', 'bad-request'],
  ['/public/%00/x', 'bad-request'],
  // look-alikes that a backend applying NFKC or Windows best-fit would read as '.', '/' or '\'
  ['/public/%EF%BC%8E%EF%BC%8E/admin', 'bad-request'], // U+FF0E FULLWIDTH FULL STOP
  ['/public/..%EF%BC%8Fadmin', 'bad-request'], // U+FF0F FULLWIDTH SOLIDUS
  ['/public/..%EF%BC%BCadmin', 'bad-request'], // U+FF3C FULLWIDTH REVERSE SOLIDUS
  ['/public/..%E2%88%95admin', 'bad-request'], // U+2215 DIVISION SLASH (best-fit)
  ['/public/..%E2%81%84admin', 'bad-request'], // U+2044 FRACTION SLASH (best-fit)
  ['/public/..%E2%88%96admin', 'bad-request'], // U+2216 SET MINUS (best-fit)
  ['/public/%E2%80%A4%E2%80%A4/admin', 'bad-request'], // U+2024 ONE DOT LEADER
  ['/public/%E2%80%A5/admin', 'bad-request'], // U+2025 TWO DOT LEADER
  ['/public/%E3%80%82%E3%80%82/admin', 'bad-request'], // U+3002 IDEOGRAPHIC FULL STOP
  ['/public/%EF%BD%A1%EF%BD%A1/admin', 'bad-request'], // U+FF61 HALFWIDTH IDEOGRAPHIC FULL STOP
  ['/public/%EF%B9%92%EF%B9%92/admin', 'bad-request'], // U+FE52 SMALL FULL STOP
  ['/public/..%EF%B9%A8admin', 'bad-request'], // U+FE68 SMALL REVERSE SOLIDUS
  ['/public/..%E2%A7%B8admin', 'bad-request'], // U+29F8 BIG SOLIDUS
  ['/public/..%C2%A5admin', 'bad-request'], // U+00A5 YEN SIGN (0x5C in cp932)
  // dot segments with trailing spaces or dots ('..' to Windows)
  ['/public/..%20/admin', 'bad-request'],
  ['/public/.%20/admin', 'bad-request'],
  ['/public/.../admin', 'bad-request'],
  ['/public/..%20./admin', 'bad-request'],
  ['/public/..%E3%80%80/admin', 'bad-request'], // U+3000 IDEOGRAPHIC SPACE
  ['/ADMIN', 'no-route'],
  ['/Admin', 'no-route'],
  ['/admin/', 'no-route'],
  ['/PUBLIC/x', 'no-route'],
  // These do reach the upstream, always in canonical form.
  ['/public/x', { upstream: '/public/x' }],
  ['/public', { upstream: '/public' }],
  ['/public/', { upstream: '/public/' }],
  ['/public/./a//b/../c', { upstream: '/public/a/c' }],
  ['/public/a/b/..', { upstream: '/public/a/' }],
  ['/public/%2e', { upstream: '/public/' }],
  ['/public/%61bc', { upstream: '/public/abc' }],
  ['/public/a%20b', { upstream: '/public/a%20b' }],
  ['/public/%c3%a9t%C3%A9', { upstream: '/public/%C3%A9t%C3%A9' }],
  ['/public/%E6%97%A5%E6%9C%AC%E8%AA%9E', { upstream: '/public/%E6%97%A5%E6%9C%AC%E8%AA%9E' }], // 日本語
  ['/public/%F0%9F%98%80', { upstream: '/public/%F0%9F%98%80' }], // emoji
  ['/public/...x/.y./b..', { upstream: '/public/...x/.y./b..' }],
  ['/public/x?q=%EF%BC%8E%EF%BC%8E', { upstream: '/public/x?q=%EF%BC%8E%EF%BC%8E' }], // the query is forwarded raw
  ['/admin/../public/x', { upstream: '/public/x' }],
  ['/public//..//public/y', { upstream: '/public/y' }],
  ['http://gw.test/public/abs', { upstream: '/public/abs' }],
];

test('hostile and odd request targets land where their canonical path says, or are refused', async () => {
  const wrong: string[] = [];
  for (const [target, where] of cases) {
    const before = a.seen.length;
    const r = await rawRequest(port, 'GET', target);
    const reached = a.seen.length - before;
    const got = r.status === 403 && r.body.toString() === 'admin is off limits' ? ADMIN
      : r.status === 400 ? 'bad-request'
      : r.status === 404 ? 'no-route'
      : r.status === 200 && reached === 1 ? { upstream: a.seen.at(-1)!.url }
      : `status ${r.status}, ${reached} upstream requests`;
    if (JSON.stringify(got) !== JSON.stringify(where)) wrong.push(`${target}: expected ${JSON.stringify(where)}, got ${JSON.stringify(got)}`);
    if (typeof where === 'string' && reached !== 0) wrong.push(`${target}: reached the upstream`);
  }
  assert.deepEqual(wrong, []);
});

test('the query string is forwarded byte for byte, whatever it contains', async () => {
  const queries = ['q=%2e%2e/&x=a//b&y=..%2f', 'a=1&a=2&b', 'path=/admin/../x&enc=%252e%5C', 'x=%E9;y=%00', '', 'empty=&=v&&'];
  for (const q of queries) {
    const target = q === '' ? '/public/./q/../r?' : `/public/./q/../r?${q}`;
    const r = await rawRequest(port, 'GET', target);
    assert.equal(r.status, 200, target);
    // An empty query ('?' alone) is the same resource as none: it is dropped.
    assert.equal(a.seen.at(-1)!.url, q === '' ? '/public/r' : `/public/r?${q}`, target);
  }
});

test('the upstream only ever received canonical paths', () => {
  assert.ok(a.seen.length >= cases.filter(([, w]) => typeof w === 'object').length);
  for (const { url } of a.seen) {
    const path = url.split('?')[0]!;
    assert.ok(path.startsWith('/public'), url);
    assert.doesNotMatch(path, /(^|\/)\.\.?(\/|$)/, `dot segment in ${url}`);
    assert.doesNotMatch(path, /\/\//, `empty segment in ${url}`);
    assert.doesNotMatch(path, /%2f|%5c|%2e|%25|\\|;/i, `ambiguous byte in ${url}`);
  }
});
