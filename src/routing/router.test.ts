import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RouteMatch } from '../config/schema.js';
import { compileRouter, type RouteEntry, type RequestHeaders } from './router.js';

type H = RequestHeaders;

function router(...routes: [id: string, match: RouteMatch, listeners?: string[]][]) {
  const entries: RouteEntry<string>[] = routes.map(([id, match, listeners]) =>
    listeners === undefined ? { id, match, value: id } : { id, match, value: id, listeners });
  return compileRouter(entries);
}

/** The id of the winning route, or null. */
function pick(r: ReturnType<typeof router>, path: string, o: { host?: string; method?: string; headers?: H; listener?: string } = {}) {
  return r.find(o.listener ?? 'main', o.host ?? '', o.method ?? 'GET', path, o.headers ?? {})?.value ?? null;
}

test('host precedence: exact > wildcard (longer suffix first) > no host, independent of config order', () => {
  const r = router(
    ['any', { path: '/x' }],
    ['wild-short', { hosts: ['*.example.com'], path: '/x' }],
    ['wild-long', { hosts: ['*.api.example.com'], path: '/x' }],
    ['exact', { hosts: ['v1.api.example.com'], path: '/x' }],
  );
  assert.equal(pick(r, '/x', { host: 'v1.api.example.com' }), 'exact');
  assert.equal(pick(r, '/x', { host: 'v2.api.example.com' }), 'wild-long');
  assert.equal(pick(r, '/x', { host: 'www.example.com' }), 'wild-short');
  assert.equal(pick(r, '/x', { host: 'other.org' }), 'any');
  assert.equal(pick(r, '/x'), 'any');
});

test('host specificity beats path specificity; a more specific host with no matching path falls through', () => {
  const r = router(
    ['exact-path-any-host', { path: '/admin' }],
    ['prefix-exact-host', { hosts: ['api.example.com'], pathPrefix: '/' }],
    ['only-x', { hosts: ['b.example.com'], path: '/x' }],
  );
  assert.equal(pick(r, '/admin', { host: 'api.example.com' }), 'prefix-exact-host');
  assert.equal(pick(r, '/admin', { host: 'b.example.com' }), 'exact-path-any-host');
});

test('exact host with port beats exact host; port patterns need that port', () => {
  const r = router(
    ['plain', { hosts: ['api.example.com'] }],
    ['port', { hosts: ['api.example.com:8443'] }],
    ['wild-port', { hosts: ['*.example.com:9000'] }],
  );
  assert.equal(pick(r, '/', { host: 'api.example.com:8443' }), 'port');
  assert.equal(pick(r, '/', { host: 'api.example.com:8080' }), 'plain'); // port stripped for 'plain'
  assert.equal(pick(r, '/', { host: 'api.example.com' }), 'plain');
  assert.equal(pick(r, '/', { host: 'x.example.com:9000' }), 'wild-port');
  assert.equal(pick(r, '/', { host: 'x.example.com:9001' }), null);
  assert.equal(pick(r, '/', { host: 'x.example.com' }), null);
});

test('wildcard host matches any subdomain depth but not the apex', () => {
  const r = router(['w', { hosts: ['*.example.com'] }]);
  assert.equal(pick(r, '/', { host: 'a.example.com' }), 'w');
  assert.equal(pick(r, '/', { host: 'a.b.c.example.com' }), 'w');
  assert.equal(pick(r, '/', { host: 'example.com' }), null);
  assert.equal(pick(r, '/', { host: 'badexample.com' }), null);
  assert.equal(pick(r, '/', { host: '.example.com' }), null);
});

test('host matching: case-insensitive, port stripped, trailing dot ignored, junk and empty Host only reach host-less routes', () => {
  const r = router(
    ['api', { hosts: ['API.Example.com'] }],
    ['dot', { hosts: ['dot.example.com.'] }],
    ['fallback', { pathPrefix: '/fallback' }],
  );
  for (const host of ['api.example.com', 'API.EXAMPLE.COM', 'api.example.com:8080', 'Api.Example.Com.:80', 'api.example.com.']) {
    assert.equal(pick(r, '/', { host }), 'api', host);
  }
  assert.equal(pick(r, '/', { host: 'dot.example.com' }), 'dot');
  assert.equal(pick(r, '/', { host: '' }), null);
  assert.equal(pick(r, '/fallback', { host: '' }), 'fallback');
  assert.equal(pick(r, '/', { host: 'api.example.com:80x' }), null);
  assert.equal(pick(r, '/', { host: 'api.example.com/evil' }), null);
  assert.equal(pick(r, '/', { host: 'api.example.com@evil' }), null);
  assert.equal(pick(r, '/fallback', { host: '[::1]:8080' }), 'fallback');
  assert.equal(pick(r, '/fallback', { host: 'api.example.com\u0000' }), 'fallback');
});

test('path precedence: exact > params (more literals, then more segments) > wildcard/prefix (longer first) > none', () => {
  const r = router(
    ['none', {}],
    ['prefix-short', { pathPrefix: '/users' }],
    ['wild-long', { path: '/users/admin/*' }],
    ['param-2', { path: '/users/:id/:tab' }],
    ['param-1', { path: '/users/:id' }],
    ['param-lit', { path: '/users/:id/posts' }],
    ['exact', { path: '/users/me' }],
    ['param-first', { path: '/:section/me/posts' }],
  );
  assert.equal(pick(r, '/users/me'), 'exact');
  assert.equal(pick(r, '/users/42'), 'param-1');
  assert.equal(pick(r, '/users/42/posts'), 'param-lit'); // 2 literals beat 1
  assert.equal(pick(r, '/users/me/posts'), 'param-lit'); // 2 literals each: config order
  assert.equal(pick(r, '/users/42/likes'), 'param-2');
  assert.equal(pick(r, '/users/admin/x'), 'param-2'); // params beat wildcards
  assert.equal(pick(r, '/users/admin/x/y'), 'wild-long');
  assert.equal(pick(r, '/users/42/x/y'), 'prefix-short');
  assert.equal(pick(r, '/users'), 'prefix-short');
  assert.equal(pick(r, '/other'), 'none');
});

test('param tier: with equal literal counts, more segments win', () => {
  const r = router(
    ['short', { path: '/a/:x' }],
    ['short-wild', { path: '/a/:x/*' }],
    ['long', { path: '/a/:x/:y' }],
  );
  assert.equal(pick(r, '/a/1'), 'short');
  assert.equal(pick(r, '/a/1/2'), 'long');
  assert.equal(pick(r, '/a/1/2/3'), 'short-wild');
});

test('prefix tier: longer literal prefix first regardless of config order', () => {
  const r = router(
    ['api', { pathPrefix: '/api' }],
    ['api-v1', { path: '/api/v1/*' }],
    ['api-v1-users', { pathPrefix: '/api/v1/users' }],
    ['root', { pathPrefix: '/' }],
  );
  assert.equal(pick(r, '/api/v1/users/1'), 'api-v1-users');
  assert.equal(pick(r, '/api/v1/orders'), 'api-v1');
  assert.equal(pick(r, '/api/v2'), 'api');
  assert.equal(pick(r, '/apix'), 'root');
});

test('prefix tier: the literal text before the first :param decides, not the segment count', () => {
  const r = router(
    ['files', { path: '/users/:id/files/*' }], // literal prefix '/users'
    ['alice', { path: '/users/alice/*' }], // literal prefix '/users/alice'
  );
  assert.equal(pick(r, '/users/alice/files/x'), 'alice');
  assert.equal(pick(r, '/users/bob/files/x'), 'files');
});

test('methods beat no methods; more header conditions beat fewer; then config order', () => {
  const r = router(
    ['plain-1', { path: '/m' }],
    ['plain-2', { path: '/m' }],
    ['get', { path: '/m', methods: ['GET'] }],
    ['one-header', { path: '/h', headers: { 'x-a': { present: true } } }],
    ['two-headers', { path: '/h', headers: { 'x-a': { present: true }, 'x-b': { equals: '1' } } }],
    ['no-header', { path: '/h' }],
  );
  assert.equal(pick(r, '/m', { method: 'GET' }), 'get');
  assert.equal(pick(r, '/m', { method: 'POST' }), 'plain-1');
  assert.equal(pick(r, '/h', { headers: { 'x-a': 'y', 'x-b': '1' } }), 'two-headers');
  assert.equal(pick(r, '/h', { headers: { 'x-a': 'y', 'x-b': '2' } }), 'one-header');
  assert.equal(pick(r, '/h', { headers: {} }), 'no-header');
});

test('a path match without a method match is no match', () => {
  const r = router(['post-only', { path: '/items', methods: ['POST', 'PUT'] }]);
  assert.equal(pick(r, '/items', { method: 'POST' }), 'post-only');
  assert.equal(pick(r, '/items', { method: 'PUT' }), 'post-only');
  assert.equal(pick(r, '/items', { method: 'GET' }), null);
  assert.equal(pick(r, '/items', { method: 'post' }), null);
  assert.equal(pick(r, '/items', { method: 'HEAD' }), null);
});

test('case sensitivity: default exact, caseInsensitive folds ASCII both sides', () => {
  const r = router(
    ['admin', { path: '/admin' }],
    ['login', { path: '/Login', caseInsensitive: true }],
    ['docs', { pathPrefix: '/Docs', caseInsensitive: true }],
    ['files', { path: '/Files/:Name', caseInsensitive: true }],
  );
  assert.equal(pick(r, '/admin'), 'admin');
  assert.equal(pick(r, '/ADMIN'), null);
  assert.equal(pick(r, '/Admin'), null);
  assert.equal(pick(r, '/login'), 'login');
  assert.equal(pick(r, '/LOGIN'), 'login');
  assert.equal(pick(r, '/docs/X'), 'docs');
  assert.equal(pick(r, '/DOCS'), 'docs');
  assert.equal(pick(r, '/docsx'), null);
  const hit = r.find('main', '', 'GET', '/FILES/ReadMe.TXT', {});
  assert.equal(hit?.value, 'files');
  assert.deepEqual({ ...hit?.params }, { Name: 'ReadMe.TXT' }); // param values keep their case
  // non-ASCII is not folded: KELVIN SIGN must not match 'k'
  const k = router(['k', { path: '/k', caseInsensitive: true }]);
  assert.equal(pick(k, '/K'), 'k');
  assert.equal(pick(k, '/\u212a'), null);
});

test('case-insensitive and case-sensitive exact routes keep documented order', () => {
  const r = router(
    ['ci-first', { path: '/x', caseInsensitive: true }],
    ['cs-with-method', { path: '/x', methods: ['GET'] }],
    ['cs-plain', { path: '/x' }],
  );
  assert.equal(pick(r, '/x', { method: 'GET' }), 'cs-with-method'); // methods beat config order
  assert.equal(pick(r, '/x', { method: 'POST' }), 'ci-first'); // then config order
  assert.equal(pick(r, '/X', { method: 'GET' }), 'ci-first');
});

test('params extraction', () => {
  const r = router(['posts', { path: '/users/:id/posts/:postId' }], ['files', { path: '/u/:user/files/*' }]);
  const hit = r.find('main', '', 'GET', '/users/42/posts/caf\u00e9 1', {});
  assert.ok(hit);
  assert.deepEqual({ ...hit.params }, { id: '42', postId: 'caf\u00e9 1' });
  assert.equal(hit.wildcard, undefined);
  assert.equal(hit.prefixLength, '/users/42/posts/caf\u00e9 1'.length);
  assert.equal(pick(r, '/users//posts/1'), null); // params are non-empty
  assert.equal(pick(r, '/users/42/posts'), null);
  assert.equal(pick(r, '/users/42/posts/1/'), null); // trailing slash is significant
  assert.equal(pick(r, '/users/42/posts/1/x'), null);
  const f = r.find('main', '', 'GET', '/u/bob/files/a/b.txt', {});
  assert.ok(f);
  assert.deepEqual({ ...f.params }, { user: 'bob' });
  assert.equal(f.wildcard, 'a/b.txt');
  assert.equal(f.prefixLength, '/u/bob/files'.length);
});

test('routes without params share a frozen empty params object', () => {
  const r = router(['a', { path: '/a' }], ['b', { pathPrefix: '/b' }]);
  const a = r.find('main', '', 'GET', '/a', {});
  const b = r.find('main', '', 'GET', '/b/c', {});
  assert.ok(a && b);
  assert.equal(a.params, b.params);
  assert.ok(Object.isFrozen(a.params));
  assert.deepEqual(Object.keys(a.params), []);
});

test('wildcard value and prefixLength', () => {
  const r = router(['static', { path: '/static/*' }], ['all', { path: '/*' }]);
  const cases: [string, string, string, number][] = [
    ['/static', 'static', '', 7],
    ['/static/', 'static', '', 7],
    ['/static/a', 'static', 'a', 7],
    ['/static/a/b/c.css', 'static', 'a/b/c.css', 7],
    ['/staticx', 'all', 'staticx', 0],
    ['/', 'all', '', 0],
  ];
  for (const [path, id, wildcard, prefixLength] of cases) {
    const hit = r.find('main', '', 'GET', path, {});
    assert.deepEqual(hit && { v: hit.value, w: hit.wildcard, p: hit.prefixLength }, { v: id, w: wildcard, p: prefixLength }, path);
  }
});

test('pathPrefix matches on segment boundaries only', () => {
  const r = router(['api', { pathPrefix: '/api' }], ['slash', { pathPrefix: '/v2/' }]);
  assert.equal(pick(r, '/api'), 'api');
  assert.equal(pick(r, '/api/'), 'api');
  assert.equal(pick(r, '/api/x/y'), 'api');
  assert.equal(pick(r, '/apix'), null);
  const deep = router(['v1', { pathPrefix: '/api/v1' }], ['ci', { pathPrefix: '/Docs/V2', caseInsensitive: true }]);
  assert.equal(pick(deep, '/api/v1/x'), 'v1');
  assert.equal(pick(deep, '/api/v1x'), null);
  assert.equal(pick(deep, '/docs/v2'), 'ci');
  assert.equal(pick(deep, '/docs/v2x'), null);
  assert.equal(pick(r, '/ap'), null);
  assert.equal(pick(r, '/v2'), null); // a prefix ending in '/' requires the slash
  assert.equal(pick(r, '/v2/'), 'slash');
  assert.equal(pick(r, '/v2/x'), 'slash');
  const hit = r.find('main', '', 'GET', '/api/x', {});
  assert.equal(hit?.prefixLength, 4);
  assert.equal(hit?.wildcard, undefined);
});

test('no path condition matches any path', () => {
  const r = router(['any', { methods: ['GET'] }]);
  assert.equal(pick(r, '/'), 'any');
  assert.equal(pick(r, '/deep/path/x'), 'any');
  assert.equal(r.find('main', '', 'GET', '/x', {})?.prefixLength, 0);
});

test('header conditions: present, absent, equals, oneOf; names case-insensitive; repeated headers are ambiguous', () => {
  const r = router(
    ['present', { path: '/p', headers: { 'X-Canary': { present: true } } }],
    ['absent', { path: '/a', headers: { 'x-debug': { present: false } } }],
    ['equals', { path: '/e', headers: { 'X-Env': { equals: 'prod' } } }],
    ['oneof', { path: '/o', headers: { 'x-tier': { oneOf: ['gold', 'silver'] } } }],
    ['proto', { path: '/c', headers: { constructor: { present: true } } }],
  );
  assert.equal(pick(r, '/p', { headers: { 'x-canary': '' } }), 'present');
  assert.equal(pick(r, '/p', { headers: {} }), null);
  assert.equal(pick(r, '/a', { headers: {} }), 'absent');
  assert.equal(pick(r, '/a', { headers: { 'x-debug': '1' } }), null);
  assert.equal(pick(r, '/e', { headers: { 'x-env': 'prod' } }), 'equals');
  assert.equal(pick(r, '/e', { headers: { 'x-env': 'Prod' } }), null);
  assert.equal(pick(r, '/e', { headers: { 'x-env': ['prod'] } }), 'equals');
  assert.equal(pick(r, '/e', { headers: { 'x-env': ['prod', 'dev'] } }), null);
  assert.equal(pick(r, '/e', { headers: {} }), null);
  assert.equal(pick(r, '/o', { headers: { 'x-tier': 'silver' } }), 'oneof');
  assert.equal(pick(r, '/o', { headers: { 'x-tier': 'bronze' } }), null);
  assert.equal(pick(r, '/c', { headers: {} }), null); // Object.prototype.constructor is not a header
});

test('listener restriction', () => {
  const r = router(
    ['admin', { pathPrefix: '/' }, ['admin']],
    ['both', { path: '/x' }, ['public', 'admin']],
    ['everywhere', { path: '/y' }],
    ['nowhere', { path: '/z' }, []],
  );
  assert.equal(pick(r, '/a', { listener: 'admin' }), 'admin');
  assert.equal(pick(r, '/a', { listener: 'public' }), null);
  assert.equal(pick(r, '/x', { listener: 'public' }), 'both');
  assert.equal(pick(r, '/x', { listener: 'other' }), null);
  assert.equal(pick(r, '/y', { listener: 'other' }), 'everywhere');
  assert.equal(pick(r, '/y', { listener: 'admin' }), 'everywhere');
  assert.equal(pick(r, '/z', { listener: 'admin' }), 'admin');
  assert.equal(pick(r, '/z', { listener: 'public' }), null);
});

test('no match returns null', () => {
  const r = router(['a', { path: '/a', hosts: ['a.example.com'] }]);
  assert.equal(pick(r, '/b', { host: 'a.example.com' }), null);
  assert.equal(pick(r, '/a', { host: 'b.example.com' }), null);
  assert.equal(pick(r, '/a'), null);
  assert.equal(compileRouter([]).find('main', 'x', 'GET', '/', {}), null);
});

test('find never throws on odd input', () => {
  const r = router(['p', { path: '/a/:b/*', caseInsensitive: true }], ['h', { hosts: ['*.x.com:1'] }], ['q', { pathPrefix: '/q' }]);
  for (const path of ['', 'a', '/', '//', '/a', '/a/', '\u0000', '/a/\ud800/']) {
    for (const host of ['', ':', '[', '[]', '[::1', 'a:', '.', '..', 'X.COM:1', '\u00ff']) {
      assert.doesNotThrow(() => r.find('l', host, '', path, {}));
    }
  }
});

test('invalid patterns throw, naming the route id', () => {
  const bad: [string, RouteMatch, RegExp][] = [
    ['empty-param', { path: '/a/:' }, /invalid parameter name/],
    ['mid-wild', { path: '/a/*/b' }, /'\*' is only allowed as the final segment/],
    ['glob', { path: '/a/*.png' }, /'\*' is only allowed/],
    ['dup', { path: '/a/:id/b/:id' }, /duplicate parameter ":id"/],
    ['bad-name', { path: '/a/:1x' }, /invalid parameter name/],
    ['proto', { path: '/a/:__proto__' }, /invalid parameter name/],
    ['encoded', { path: '/caf%C3%A9' }, /not a normalized/],
    ['dots', { path: '/a/../b' }, /not a normalized/],
    ['double-slash', { path: '/a//b' }, /not a normalized/],
    ['backslash', { path: '/a\\b' }, /not a normalized/],
    ['prefix-param', { pathPrefix: '/users/:id' }, /pathPrefix .* is literal/],
    ['prefix-wild', { pathPrefix: '/static/*' }, /pathPrefix .* is literal/],
    ['both', { path: '/a', pathPrefix: '/a' }, /either match.path or match.pathPrefix/],
    ['relative', { path: 'a' }, /must start with/],
    ['host', { hosts: ['exa mple.com'] }, /invalid host pattern/],
    ['host-mid-wild', { hosts: ['a.*.com'] }, /invalid host pattern/],
    ['port', { hosts: ['a.com:70000'] }, /invalid port/],
    ['method', { methods: ['get'] }, /invalid method/],
  ];
  for (const [id, match, msg] of bad) {
    assert.throws(
      () => compileRouter([{ id: 'fine', match: { path: '/ok/:x' }, value: 0 }, { id, match, value: 1 }]),
      (e: unknown) => e instanceof Error && e.message.includes(`route "${id}"`) && msg.test(e.message),
      id,
    );
  }
});

test('valid edge patterns compile', () => {
  assert.doesNotThrow(() => compileRouter([
    { id: 'colon', match: { path: '/v1/things:batchGet' }, value: 0 },
    { id: 'unicode', match: { path: '/café/:x' }, value: 0 },
    { id: 'root-wild', match: { path: '/*' }, value: 0 },
    { id: 'trailing', match: { path: '/a/:b/' }, value: 0 },
  ]));
  const r = router(['colon', { path: '/v1/things:batchGet' }], ['u', { path: '/café/:x' }]);
  assert.equal(pick(r, '/v1/things:batchGet'), 'colon');
  assert.equal(pick(r, '/café/1'), 'u');
});
