import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { GatewayConfig, RouteConfig, UpstreamConfig } from './schema.js';
import { analyzePathPattern, checkSemantics, type SemanticIssue } from './semantic.js';
import { validateConfig } from './load.js';

function base(): GatewayConfig {
  return {
    listeners: [{ name: 'http', address: '127.0.0.1', port: 8080 }],
    upstreams: { demo: { targets: [{ url: 'http://127.0.0.1:9000' }] } },
    routes: [{ id: 'root', match: { pathPrefix: '/' }, upstream: 'demo' }],
  };
}

function route(extra: Partial<RouteConfig>): GatewayConfig {
  const cfg = base();
  cfg.routes = [{ id: 'r', match: {}, upstream: 'demo', ...extra }];
  return cfg;
}

function upstream(extra: Partial<UpstreamConfig>): GatewayConfig {
  const cfg = base();
  cfg.upstreams = { demo: { targets: [{ url: 'http://127.0.0.1:9000' }], ...extra } };
  return cfg;
}

const errors = (cfg: GatewayConfig): [string, string][] =>
  checkSemantics(cfg).filter((i) => i.severity === 'error').map((i) => [i.path, i.message]);
const warnings = (cfg: GatewayConfig): [string, string][] =>
  checkSemantics(cfg).filter((i) => i.severity === 'warning').map((i) => [i.path, i.message]);
const paths = (list: [string, string][]): string[] => list.map(([p]) => p);

describe('checkSemantics', () => {
  it('finds nothing wrong with a sound config (and the fixture passes the schema)', () => {
    assert.deepEqual(checkSemantics(base()), []);
    assert.ok(validateConfig(base()).ok);
  });

  describe('routes', () => {
    it('needs exactly one of upstream / respond', () => {
      const neither = base();
      neither.routes = [{ id: 'r', match: {} }];
      assert.deepEqual(errors(neither), [['routes[0]', 'a route needs exactly one of "upstream" or "respond" (it has neither)']]);
      const both = route({ respond: { status: 200 } });
      assert.deepEqual(errors(both), [['routes[0]', 'a route needs exactly one of "upstream" or "respond" (it has both)']]);
      const respondOnly = base();
      respondOnly.routes = [{ id: 'r', match: {}, respond: { status: 204 } }];
      respondOnly.upstreams = undefined;
      assert.deepEqual(checkSemantics(respondOnly), []);
    });

    it('checks that the upstream exists, suggesting a close name', () => {
      assert.deepEqual(errors(route({ upstream: 'dmeo' })), [['routes[0].upstream', 'unknown upstream "dmeo"; did you mean "demo"?']]);
      assert.deepEqual(errors(route({ upstream: 'payments' })), [['routes[0].upstream', 'unknown upstream "payments"']]);
      const none = route({ upstream: 'x' });
      none.upstreams = undefined;
      assert.deepEqual(errors(none), [['routes[0].upstream', 'unknown upstream "x" (no upstreams are defined)']]);
    });

    it('warns about upstreams no route uses', () => {
      const cfg = base();
      cfg.upstreams = { ...cfg.upstreams, spare: { targets: [{ url: 'http://10.0.0.1:80' }] } };
      assert.deepEqual(warnings(cfg), [['upstreams.spare', 'upstream "spare" is not used by any route']]);
    });

    it('requires unique route ids', () => {
      const cfg = base();
      cfg.routes = [cfg.routes[0]!, { id: 'x', match: {}, upstream: 'demo' }, { id: 'root', match: {}, upstream: 'demo' }];
      assert.deepEqual(errors(cfg), [['routes[2].id', 'duplicate route id "root" (also routes[0])']]);
    });

    it('checks route listeners exist', () => {
      assert.deepEqual(errors(route({ listeners: ['http', 'htp', 'admin'] })), [
        ['routes[0].listeners[1]', 'unknown listener "htp"; did you mean "http"?'],
        ['routes[0].listeners[2]', 'unknown listener "admin"'],
      ]);
      assert.deepEqual(paths(warnings(route({ listeners: [] }))), ['routes[0].listeners']);
    });

    it('allows at most one of path / pathPrefix', () => {
      assert.deepEqual(errors(route({ match: { path: '/a', pathPrefix: '/a' } })), [['routes[0].match', 'use either "path" or "pathPrefix", not both']]);
    });

    it('validates path patterns', () => {
      assert.deepEqual(errors(route({ match: { path: '/users/:id/files/:file_2/*' } })), []);
      assert.deepEqual(errors(route({ match: { path: '/v1/things:batchGet' } })), [], 'a colon inside a segment is literal');
      const bad: [string, string][] = [
        ['/users/:1d', 'invalid parameter ":1d": names must match [A-Za-z_][A-Za-z0-9_]*'],
        ['/users/:', 'invalid parameter ":": names must match [A-Za-z_][A-Za-z0-9_]*'],
        ['/users/:user-id', 'invalid parameter ":user-id": names must match [A-Za-z_][A-Za-z0-9_]*'],
        ['/a/:id/b/:id', 'duplicate parameter ":id"'],
        ['/a/*/b', '"*" is only allowed as the whole last segment ("/*")'],
        ['/files*', '"*" is only allowed as the whole last segment ("/*")'],
      ];
      for (const [path, message] of bad) assert.deepEqual(errors(route({ match: { path } })), [['routes[0].match.path', message]], path);
    });

    it('treats pathPrefix literally', () => {
      assert.deepEqual(paths(errors(route({ match: { pathPrefix: '/api/:id' } }))), ['routes[0].match.pathPrefix']);
      assert.deepEqual(paths(errors(route({ match: { pathPrefix: '/api/*' } }))), ['routes[0].match.pathPrefix']);
    });

    it('allows stripPrefix only as a segment prefix of the matched path', () => {
      for (const [match, sp] of [[{ pathPrefix: '/api' }, '/api'], [{ pathPrefix: '/api/v1' }, '/api'], [{ path: '/api/:id' }, '/api'], [{ pathPrefix: '/x' }, '/'], [{ pathPrefix: '/api/v1' }, '/api/']] as const) {
        assert.deepEqual(errors(route({ match: { ...match }, stripPrefix: sp })), [], `${JSON.stringify(match)} ${sp}`);
      }
      assert.deepEqual(errors(route({ match: { pathPrefix: '/api' }, stripPrefix: '/ap' })), [
        ['routes[0].stripPrefix', '"/ap" is not a prefix (on segment boundaries) of the route\'s match.pathPrefix "/api"'],
      ]);
      assert.deepEqual(paths(errors(route({ match: { pathPrefix: '/api' }, stripPrefix: '/other' }))), ['routes[0].stripPrefix']);
      assert.deepEqual(errors(route({ match: {}, stripPrefix: '/api' })), [['routes[0].stripPrefix', 'stripPrefix needs match.path or match.pathPrefix that begins with it']]);
      assert.deepEqual(paths(errors(route({ match: { path: '/t/:id/x' }, stripPrefix: '/t/:id' }))), ['routes[0].stripPrefix']);
      assert.deepEqual(errors(route({ match: { pathPrefix: '/API', caseInsensitive: true }, stripPrefix: '/api' })), []);
    });

    it('checks that rewritePath uses only what match.path captures', () => {
      assert.deepEqual(errors(route({ match: { path: '/u/:id/*' }, rewritePath: '/users/:id/*' })), []);
      assert.deepEqual(errors(route({ match: { path: '/u/:id' }, rewritePath: '/users/:uid/*' })), [
        ['routes[0].rewritePath', '":uid" is not captured by match.path (captured: :id)'],
        ['routes[0].rewritePath', '"*" needs a match.path ending in "/*"'],
      ]);
      assert.deepEqual(paths(errors(route({ match: { pathPrefix: '/u' }, rewritePath: '/x/:id' }))), ['routes[0].rewritePath']);
    });

    it('rejects CR, LF and NUL in header values', () => {
      for (const v of ['a\rb', 'a\nb', 'a\0b']) {
        assert.deepEqual(errors(route({ requestHeaders: { set: { 'X-A': v } } })), [['routes[0].requestHeaders.set["X-A"]', 'header value must not contain CR, LF or NUL']]);
        assert.deepEqual(paths(errors(route({ responseHeaders: { add: { 'X-B': v } } }))), ['routes[0].responseHeaders.add["X-B"]']);
      }
      const respond = base();
      respond.routes = [{ id: 'r', match: {}, respond: { status: 200, contentType: 'text/plain\r\nX: y' } }];
      assert.deepEqual(paths(errors(respond)), ['routes[0].respond.contentType']);
      assert.deepEqual(errors(route({ requestHeaders: { set: { 'X-A': 'fine value; with=stuff' } } })), []);
    });

    it('refuses to set framing and hop-by-hop headers', () => {
      assert.deepEqual(errors(route({ requestHeaders: { set: { 'Transfer-Encoding': 'chunked' }, add: { 'content-length': '0' } } })), [
        ['routes[0].requestHeaders.set["Transfer-Encoding"]', '"Transfer-Encoding" cannot be set: the gateway controls hop-by-hop and message-framing headers'],
        ['routes[0].requestHeaders.add["content-length"]', '"content-length" cannot be added: the gateway controls hop-by-hop and message-framing headers'],
      ]);
      assert.deepEqual(errors(route({ requestHeaders: { remove: ['Connection'] } })), []);
    });

    it('refuses request headers the gateway writes itself (Host, X-Forwarded-*, Via)', () => {
      for (const h of ['Host', 'X-Forwarded-For', 'x-forwarded-proto', 'Forwarded', 'Via']) {
        const got = paths(errors(route({ requestHeaders: { set: { [h]: 'x' } } })));
        assert.equal(got.length, 1, h);
        assert.ok(got[0]!.startsWith('routes[0].requestHeaders.set') && got[0]!.includes(h), got[0]);
      }
      // on the response side they are ordinary headers
      assert.deepEqual(errors(route({ responseHeaders: { set: { Via: 'x' } } })), []);
    });

    it('rejects websocket on respond routes', () => {
      const cfg = base();
      cfg.routes = [{ id: 'r', match: {}, respond: { status: 200 }, websocket: true }];
      assert.deepEqual(paths(errors(cfg)), ['routes[0].websocket']);
    });
  });

  describe('listeners', () => {
    it('requires unique names', () => {
      const cfg = base();
      cfg.listeners.push({ name: 'http', port: 8081 });
      assert.deepEqual(errors(cfg), [['listeners[1].name', 'duplicate listener name "http" (also listeners[0])']]);
    });

    it('rejects two listeners on the same address and port, except port 0', () => {
      const cfg = base();
      cfg.listeners.push({ name: 'b', address: '127.0.0.1', port: 8080 });
      assert.deepEqual(errors(cfg), [['listeners[1]', '127.0.0.1:8080 conflicts with listeners[0] (127.0.0.1:8080): both cannot bind']]);
      const eph = base();
      eph.listeners = [{ name: 'a', address: '127.0.0.1', port: 0 }, { name: 'b', address: '127.0.0.1', port: 0 }];
      assert.deepEqual(errors(eph), []);
      const distinct = base();
      distinct.listeners.push({ name: 'b', address: '127.0.0.2', port: 8080 }, { name: 'c', address: '127.0.0.1', port: 8081 }, { name: 'd', address: '::1', port: 8080 });
      assert.deepEqual(errors(distinct), []);
    });

    it('knows that wildcard addresses overlap specific ones', () => {
      const v4 = base();
      v4.listeners.push({ name: 'all', port: 8080 }); // default address 0.0.0.0
      assert.deepEqual(paths(errors(v4)), ['listeners[1]']);
      const v6 = base();
      v6.listeners.push({ name: 'all6', address: '::', port: 8080 });
      assert.deepEqual(paths(errors(v6)), ['listeners[1]']);
      const spelled = base();
      spelled.listeners.push({ name: 'b', address: '::ffff:127.0.0.1', port: 8080 });
      assert.deepEqual(paths(errors(spelled)), ['listeners[1]']);
    });

    it('checks the status listener against the others', () => {
      const cfg = base();
      cfg.server = { status: { port: 8080 } };
      assert.deepEqual(errors(cfg), [['server.status', '127.0.0.1:8080 conflicts with listeners[0] (127.0.0.1:8080): both cannot bind']]);
      cfg.server = { status: { port: 8080, enabled: false } };
      assert.deepEqual(errors(cfg), []);
    });
  });

  describe('upstreams', () => {
    it('allows hashOn only with consistent-hash and warns about consistent-hash without it', () => {
      assert.deepEqual(errors(upstream({ hashOn: { clientIp: true } })), [['upstreams.demo.hashOn', 'hashOn is only used by balancer "consistent-hash" (this upstream uses "round-robin")']]);
      assert.deepEqual(errors(upstream({ balancer: 'least-requests', hashOn: { header: 'x-user' } })).length, 1);
      assert.deepEqual(checkSemantics(upstream({ balancer: 'consistent-hash', hashOn: { cookie: 'sid' } })), []);
      assert.deepEqual(warnings(upstream({ balancer: 'consistent-hash' })), [['upstreams.demo.balancer', 'balancer "consistent-hash" without hashOn falls back to round-robin']]);
    });

    it('rejects credentials and paths in target URLs without echoing them', () => {
      const creds = errors(upstream({ targets: [{ url: 'http://admin:hunter2@10.0.0.1:80' }] }));
      assert.deepEqual(paths(creds), ['upstreams.demo.targets[0].url']);
      assert.ok(!JSON.stringify(creds).includes('hunter2'));
      assert.deepEqual(paths(errors(upstream({ targets: [{ url: 'http://10.0.0.1:99999' }] }))), ['upstreams.demo.targets[0].url']);
      assert.deepEqual(errors(upstream({ targets: [{ url: 'https://[::1]:8443/' }, { url: 'http://backend.internal' }] })), []);
    });

    it('warns about duplicate and fully drained targets', () => {
      assert.deepEqual(warnings(upstream({ targets: [{ url: 'http://a:1' }, { url: 'http://a:1/' }] })), [['upstreams.demo.targets[1].url', 'same origin as targets[0]']]);
      assert.deepEqual(paths(warnings(upstream({ targets: [{ url: 'http://a:1', weight: 0 }, { url: 'http://b:1', weight: 0 }] }))), ['upstreams.demo.targets']);
      assert.deepEqual(warnings(upstream({ targets: [{ url: 'http://a:1', weight: 0 }, { url: 'http://b:1' }] })), []);
    });

    it('rejects CR/LF in the health-check Host', () => {
      assert.deepEqual(paths(errors(upstream({ healthCheck: { active: { path: '/', host: 'a\r\nb' } } }))), ['upstreams.demo.healthCheck.active.host']);
    });
  });

  describe('server and requestId', () => {
    it('accepts addresses, CIDR blocks and aliases in trustedProxies', () => {
      const cfg = base();
      cfg.server = { trustedProxies: ['10.0.0.0/8', '192.168.1.10', '::1', 'fd00::/8', '2001:db8::/32', 'loopback', 'private', 'linklocal'] };
      assert.deepEqual(checkSemantics(cfg), []);
    });

    it('rejects malformed and ambiguous trustedProxies entries', () => {
      const bad = ['10/8', '127.1', '0x7f.0.0.1', '2130706433', 'foo', '1.2.3.4/33', '::1/129', '10.0.0.0/8/8', '10.0.0.0/', 'Loopback'];
      const cfg = base();
      cfg.server = { trustedProxies: bad };
      assert.deepEqual(paths(errors(cfg)), bad.map((_, i) => `server.trustedProxies[${i}]`));
    });

    it('warns about host bits and trust-everyone blocks', () => {
      const cfg = base();
      cfg.server = { trustedProxies: ['10.0.0.1/8', '0.0.0.0/0', '::/0'] };
      assert.deepEqual(warnings(cfg), [
        ['server.trustedProxies[0]', '"10.0.0.1/8" has host bits set; it means 10.0.0.0/8'],
        ['server.trustedProxies[1]', '"0.0.0.0/0" trusts every peer: any client can spoof its address with X-Forwarded-For / Forwarded'],
        ['server.trustedProxies[2]', '"::/0" trusts every peer: any client can spoof its address with X-Forwarded-For / Forwarded'],
      ]);
      assert.deepEqual(errors(cfg), []);
    });

    it('warns when the status listener is not on loopback', () => {
      for (const address of ['127.0.0.1', '::1', 'localhost', '127.0.0.5']) {
        const cfg = base();
        cfg.server = { status: { address } };
        assert.deepEqual(checkSemantics(cfg), [], address);
      }
      for (const address of ['0.0.0.0', '10.1.2.3', '::', 'status.example.com']) {
        const cfg = base();
        cfg.server = { status: { address } };
        assert.deepEqual(paths(warnings(cfg)), ['server.status.address'], address);
      }
      const off = base();
      off.server = { status: { enabled: false, address: '0.0.0.0' } };
      assert.deepEqual(checkSemantics(off), []);
    });

    it('rejects a hop-by-hop requestId header', () => {
      for (const header of ['Connection', 'keep-alive', 'TE', 'Transfer-Encoding', 'Upgrade', 'Proxy-Authorization']) {
        const cfg = base();
        cfg.requestId = { header };
        assert.deepEqual(paths(errors(cfg)), ['requestId.header'], header);
      }
      const ok = base();
      ok.requestId = { header: 'X-Request-Id' };
      assert.deepEqual(checkSemantics(ok), []);
    });

    it('rejects CR/LF in server.via', () => {
      const cfg = base();
      cfg.server = { via: 'gw\r\nX: 1' };
      assert.deepEqual(paths(errors(cfg)), ['server.via']);
    });
  });
});

describe('analyzePathPattern', () => {
  it('returns parameters and the wildcard', () => {
    assert.deepEqual(analyzePathPattern('/a/:x/b/:y/*'), { params: ['x', 'y'], wildcard: true, problems: [] });
    assert.deepEqual(analyzePathPattern('/'), { params: [], wildcard: false, problems: [] });
  });
});

// keep the SemanticIssue type exercised (it is part of the public surface)
const _typed: SemanticIssue = { path: '', message: '', severity: 'warning' };
void _typed;
