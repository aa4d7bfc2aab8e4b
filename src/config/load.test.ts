import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatIssue, loadConfigFile, loadConfigText, validateConfig, PLACEHOLDER_SECRET, type ConfigIssue, type LoadResult } from './load.js';

const FILE = '/virtual/conf/gw.yaml';

const VALID = `listeners:
  - name: http
    address: 127.0.0.1
    port: 8080
upstreams:
  demo:
    targets:
      - url: http://127.0.0.1:9000
routes:
  - id: root
    match:
      pathPrefix: /
    upstream: demo
`;

/** Replace exactly one occurrence (no `$` replacement patterns, unlike String#replace). */
function rep(text: string, from: string, to: string): string {
  const parts = text.split(from);
  assert.equal(parts.length, 2, `expected exactly one ${JSON.stringify(from)}`);
  return parts.join(to);
}

function errorsOf(r: LoadResult): ConfigIssue[] {
  assert.equal(r.ok, false, 'expected the config to be rejected');
  return r.ok ? [] : r.errors;
}

/** [line, column, path, message] of each error, for exact comparisons */
const brief = (list: ConfigIssue[]): [number | undefined, number | undefined, string, string][] =>
  list.map((i) => [i.line, i.column, i.path, i.message]);

describe('loadConfigText: valid input', () => {
  it('accepts a minimal YAML config and returns the typed value', () => {
    const r = loadConfigText(VALID, FILE, {});
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.config.listeners[0]?.port, 8080);
    assert.equal(r.config.upstreams?.demo?.targets[0]?.url, 'http://127.0.0.1:9000');
    assert.deepEqual(r.warnings, []);
    assert.equal(r.file, FILE);
  });

  it('accepts the same config as JSON', () => {
    const json = JSON.stringify({
      listeners: [{ name: 'http', address: '127.0.0.1', port: 8080 }],
      upstreams: { demo: { targets: [{ url: 'http://127.0.0.1:9000' }] } },
      routes: [{ id: 'root', match: { pathPrefix: '/' }, upstream: 'demo' }],
    }, null, 2);
    const r = loadConfigText(json, '/virtual/gw.json', {});
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.config.routes[0]?.id, 'root');
  });

  it('strips a UTF-8 BOM', () => {
    assert.ok(loadConfigText(`\uFEFF${VALID}`, FILE, {}).ok);
  });

  it('validateConfig checks a value built in code', () => {
    const good = validateConfig({ listeners: [{ name: 'a', port: 0 }], routes: [{ id: 'r', match: {}, respond: { status: 204 } }] });
    assert.ok(good.ok);
    const bad = validateConfig({ listeners: [{ name: 'a', port: 0 }], routes: [{ id: 'r', match: {} }] });
    assert.deepEqual(errorsOf(bad).map((e) => e.path), ['routes[0]']);
  });

  it('a discriminated union (state.type) reports the chosen branch\'s problem, not "type must be" another', () => {
    const base = { listeners: [{ name: 'a', port: 0 }], routes: [{ id: 'r', match: {}, respond: { status: 204 } }] };
    const missingUrl = validateConfig({ ...base, state: { type: 'redis' } });
    assert.deepEqual(errorsOf(missingUrl).map((e) => [e.path, e.message]), [['state', 'missing required key "url"']]);
    const strayKey = validateConfig({ ...base, state: { type: 'memory', url: 'redis://x' } });
    assert.deepEqual(errorsOf(strayKey).map((e) => e.path), ['state.url']);
    // no branch matches the discriminator: the union's own message, listing the alternatives
    const typo = validateConfig({ ...base, state: { type: 'rediss' } });
    assert.match(errorsOf(typo)[0]!.message, /^must be one of \{type: "memory"\}, \{type: "redis", url/);
  });
});

describe('loadConfigText: schema errors', () => {
  it('reports every error with its line, column and JS-like path', () => {
    const text = [
      'listeners:', //          1
      '  - name: http', //      2
      '    port: 99999', //     3
      'routes:', //             4
      '  - id: a', //           5
      '    match:', //          6
      '      path: api', //     7
      '    upstream: u', //     8
      '  - id: b', //           9
      '    match:', //          10
      '      pathh: /x', //     11
      '    respond:', //        12
      '      status: 200', //   13
      '',
    ].join('\n');
    assert.deepEqual(brief(errorsOf(loadConfigText(text, FILE, {}))), [
      [3, 11, 'listeners[0].port', 'must be <= 65535'],
      [7, 13, 'routes[0].match.path', 'must match pattern "^/"'],
      [8, 15, 'routes[0].upstream', 'unknown upstream "u" (no upstreams are defined)'],
      [11, 7, 'routes[1].match.pathh', 'unknown key "pathh"; did you mean "path"?'],
    ]);
  });

  it('suggests only close keys', () => {
    const far = rep(VALID, '    address: 127.0.0.1\n', '    zzzzzzzz: 1\n');
    const [e] = errorsOf(loadConfigText(far, FILE, {}));
    assert.equal(e?.message, 'unknown key "zzzzzzzz"');
    assert.equal(e?.path, 'listeners[0].zzzzzzzz');
    assert.deepEqual([e?.line, e?.column], [3, 5]);
  });

  it('reports a missing required key at the object that lacks it', () => {
    const text = rep(VALID, '    port: 8080\n', '');
    assert.deepEqual(brief(errorsOf(loadConfigText(text, FILE, {}))), [[2, 5, 'listeners[0]', 'missing required key "port"']]);
  });

  it('points at the key when a mapping value is empty', () => {
    const text = rep(VALID, '    match:\n      pathPrefix: /\n', '    match:\n');
    assert.deepEqual(brief(errorsOf(loadConfigText(text, FILE, {}))), [[11, 5, 'routes[0].match', 'must be an object (key: value mapping) (the value is empty)']]);
  });

  it('reports a non-mapping document at the root', () => {
    const [e] = errorsOf(loadConfigText('- a\n- b\n', FILE, {}));
    assert.equal(e?.path, '');
    assert.match(e?.message ?? '', /must be an object/);
    assert.equal(formatIssue(e!), `${FILE}:1:1: must be an object (key: value mapping)`);
  });

  it('collapses a failed union into one message listing the alternatives', () => {
    const text = rep(VALID, '    targets:\n', '    balancer: consistent-hash\n    hashOn: { header: x-user, cookie: sid }\n    targets:\n');
    assert.deepEqual(brief(errorsOf(loadConfigText(text, FILE, {}))), [
      [8, 5, 'upstreams.demo.hashOn', 'must be one of {header}, {cookie}, {clientIp: true}'],
    ]);
  });

  it('names an unknown key inside a union', () => {
    const text = rep(VALID, '    targets:\n', '    balancer: consistent-hash\n    hashOn: { headr: x-user }\n    targets:\n');
    const [e] = errorsOf(loadConfigText(text, FILE, {}));
    assert.equal(e?.message, 'must be one of {header}, {cookie}, {clientIp: true} (unknown key "headr"; did you mean "header"?)');
  });

  it('reports the inner error when one alternative clearly matches', () => {
    const text = rep(VALID, '    targets:\n', '    balancer: consistent-hash\n    hashOn: { clientIp: false }\n    targets:\n');
    assert.deepEqual(brief(errorsOf(loadConfigText(text, FILE, {}))), [[8, 25, 'upstreams.demo.hashOn.clientIp', 'must be true']]);
    const bad = rep(VALID, '    targets:\n', '    balancer: consistent-hash\n    hashOn: { header: "bad header" }\n    targets:\n');
    assert.deepEqual(errorsOf(loadConfigText(bad, FILE, {})).map((e) => e.path), ['upstreams.demo.hashOn.header']);
  });

  it('lists literal alternatives and suggests the closest', () => {
    const text = rep(VALID, '    targets:\n', '    balancer: round-robbin\n    targets:\n');
    assert.deepEqual(brief(errorsOf(loadConfigText(text, FILE, {}))), [
      [7, 15, 'upstreams.demo.balancer', 'must be one of "round-robin", "least-requests", "consistent-hash"; did you mean "round-robin"?'],
    ]);
    const workers = loadConfigText(`server:\n  workers: many\n${VALID}`, FILE, {});
    assert.deepEqual(brief(errorsOf(workers)), [[2, 12, 'server.workers', 'must be "auto" or an integer from 1 to 256']]);
  });

  it('rejects keys of open maps that do not match their pattern (header names, upstream names)', () => {
    const text = rep(VALID, '    upstream: demo\n', '    upstream: demo\n    requestHeaders:\n      set:\n        "X Bad": v\n');
    assert.deepEqual(brief(errorsOf(loadConfigText(text, FILE, {}))), [
      [16, 9, 'routes[0].requestHeaders.set["X Bad"]', 'invalid key "X Bad": must match pattern "^[!#$%&\'*+.^_`|~0-9A-Za-z-]+$"'],
    ]);
    const up = rep(rep(VALID, '  demo:\n', '  "my api":\n'), 'upstream: demo', 'upstream: my-api');
    // (and, in the same round, the route's reference to an upstream that does not exist either)
    assert.deepEqual(errorsOf(loadConfigText(up, FILE, {})).map((e) => e.path), ['upstreams["my api"]', 'routes[0].upstream']);
  });

  it('reports schema and semantic errors in one round (README: "prints every error")', () => {
    const text = rep(rep(VALID, 'upstream: demo', 'upstream: nope'), 'port: 8080', 'port: -1');
    assert.deepEqual(brief(errorsOf(loadConfigText(text, FILE, {}))), [
      [4, 11, 'listeners[0].port', 'must be >= 0'],
      [13, 15, 'routes[0].upstream', 'unknown upstream "nope"'],
    ]);
    // a typo'd key and an unknown upstream in another route
    const two = `${VALID}  - id: second\n    match:\n      pathPrefx: /b\n    upstream: other\n`;
    assert.deepEqual(errorsOf(loadConfigText(two, FILE, {})).map((e) => e.path), ['routes[1].match.pathPrefx', 'routes[1].upstream']);
  });

  it('says nothing semantic about the parts the schema refused', () => {
    // routes[0].upstream has the wrong type: no "needs upstream or respond" about the pruned route
    const text = rep(VALID, 'upstream: demo', 'upstream: 5');
    const r = loadConfigText(text, FILE, {});
    assert.deepEqual(errorsOf(r).map((e) => [e.path, e.message]), [['routes[0].upstream', 'must be a string']]);
    // an upstream the schema refused is not reported as unknown where a route names it
    const broken = rep(VALID, '      - url: http://127.0.0.1:9000\n', '      - url: 7\n');
    assert.deepEqual(errorsOf(loadConfigText(broken, FILE, {})).map((e) => e.path), ['upstreams.demo.targets[0].url']);
    const gone = rep(VALID, '    targets:\n      - url: http://127.0.0.1:9000\n', '    targetz: []\n');
    assert.deepEqual(errorsOf(loadConfigText(gone, FILE, {})).map((e) => e.path), ['upstreams.demo', 'upstreams.demo.targetz']);
  });

  it('never throws on malformed configs while running the semantic checks', () => {
    const bad = [
      'listeners: 5\nroutes: []\n',
      'listeners: [5, {name: a}]\nroutes: [7, {id: x}]\nupstreams: []\n',
      `${VALID}identity: [1]\n`,
      `${VALID}server: {status: 7, trustedProxies: [1, {}]}\n`,
      rep(VALID, '    upstream: demo\n', '    upstream: demo\n    authentication: {methods: [{apiKey: 5}, 7, {jwt: []}]}\n    rateLimit: [1]\n'),
      rep(VALID, '      - url: http://127.0.0.1:9000\n', '      - 5\n      - {url: 7}\n    tls: 9\n    healthCheck: {active: []}\n'),
      '[1, 2]\n',
      '"just a string"\n',
    ];
    for (const text of bad) {
      const r = loadConfigText(text, FILE, {});
      assert.equal(r.ok, false, text);
      assert.ok(!r.ok && r.errors.length > 0);
    }
  });
});

describe('loadConfigText: semantic errors get positions', () => {
  it('attaches line and column to semantic issues', () => {
    const text = rep(VALID, 'upstream: demo', 'upstream: dmeo');
    const r = loadConfigText(text, FILE, {});
    assert.deepEqual(brief(errorsOf(r)), [[13, 15, 'routes[0].upstream', 'unknown upstream "dmeo"; did you mean "demo"?']]);
    assert.ok(!r.ok);
    assert.deepEqual(r.warnings.map((w) => [w.line, w.column, w.path]), [[6, 3, 'upstreams.demo']]);
  });

  it('returns warnings alongside a valid config', () => {
    const text = `server:\n  status:\n    address: 0.0.0.0\n${VALID}`;
    const r = loadConfigText(text, FILE, {});
    assert.ok(r.ok);
    assert.deepEqual(r.warnings.map((w) => [w.line, w.column, w.path, w.severity]), [[3, 14, 'server.status.address', 'warning']]);
    assert.match(formatIssue(r.warnings[0]!), /^warning: \/virtual\/conf\/gw\.yaml:3:14: server\.status\.address: status listener exposed/);
  });
});

describe('loadConfigText: syntax errors', () => {
  it('reports YAML syntax errors with their position', () => {
    const [e, ...rest] = errorsOf(loadConfigText('listeners:\n  - name: a\n    port: [1, 2\nroutes: []\n', FILE, {}));
    assert.ok(e);
    assert.equal(e.line !== undefined && e.line >= 3, true, JSON.stringify(e));
    assert.equal(typeof e.column, 'number');
    assert.ok(!e.message.includes('\n'));
    assert.ok(rest.every((x) => x.line !== undefined));
  });

  // Indentation: the offending line is quoted, the column points at its first character, and the hint
  // names the column the neighbouring keys use (or the missing "- "). One error, not the parser's echoes.
  const ROUTES = 'listeners: [{ name: main, port: 0 }]\nupstreams: { a: { targets: [{ url: "http://127.0.0.1:9" }] } }\nroutes:\n  - id: r\n    match: { pathPrefix: / }\n';

  it('a key inside routes: indented one column too far', () => {
    const errs = errorsOf(loadConfigText(`${ROUTES}     upstream: a\n`, FILE, {}));
    assert.deepEqual(errs.map(formatIssue), [
      '/virtual/conf/gw.yaml:6:6: All mapping items must start at the same column: line 6 "     upstream: a" starts at column 6, but the keys above it start at column 5 (line 5); check the indentation',
    ]);
  });

  it('a key inside routes: indented one column short', () => {
    const errs = errorsOf(loadConfigText(`${ROUTES}   upstream: a\n`, FILE, {}));
    assert.deepEqual(errs.map(formatIssue), [
      '/virtual/conf/gw.yaml:6:4: Sequence item without - indicator: line 6 "   upstream: a" starts at column 4, but the keys above it start at column 5 (line 5); check the indentation',
    ]);
  });

  it('between two levels, both are named', () => {
    const text = 'routes:\n  - id: r\n    match:\n      pathPrefix: /\n     upstream: a\n';
    assert.deepEqual(errorsOf(loadConfigText(text, FILE, {})).map((e) => e.message), [
      'All mapping items must start at the same column: line 5 "     upstream: a" starts at column 6, but the keys above it start at column 7 (line 4) or column 5 (line 3); check the indentation',
    ]);
  });

  it('a list item without its "-"', () => {
    const errs = errorsOf(loadConfigText(`${ROUTES}    upstream: a\n  id: r2\n    match: { pathPrefix: /b }\n    upstream: a\n`, FILE, {}));
    assert.deepEqual(errs.map(formatIssue), [
      '/virtual/conf/gw.yaml:7:3: All mapping items must start at the same column: line 7 "  id: r2" starts at column 3, where the list items above it start with "- " (line 4); is its "- " missing?',
    ]);
    const two = errorsOf(loadConfigText('listeners:\n  - name: main\n    port: 0\n  name: other\nroutes: []\n', FILE, {}));
    assert.deepEqual(brief(two), [[4, 3, '', 'All mapping items must start at the same column: line 4 "  name: other" starts at column 3, where the list items above it start with "- " (line 2); is its "- " missing?']]);
  });

  it('tabs as indentation', () => {
    const errs = errorsOf(loadConfigText(`${ROUTES}\tupstream: a\n`, FILE, {}));
    assert.deepEqual(errs.map(formatIssue), [
      '/virtual/conf/gw.yaml:6:1: Tabs are not allowed as indentation: line 6 "\\tupstream: a" is indented with a tab; YAML indentation must be spaces (the keys above it start at column 5, line 5)',
    ]);
    // the lines after the tab are right: the parser's complaints about them are not repeated
    const after = errorsOf(loadConfigText('listeners: [{ name: main, port: 0 }]\nroutes:\n  - id: r\n\tmatch: { pathPrefix: / }\n    upstream: a\n', FILE, {}));
    assert.deepEqual(after.map((e) => [e.line, e.message.split(':')[0]]), [[4, 'Tabs are not allowed as indentation']]);
  });

  it('other syntax errors quote the offending line too, on one line', () => {
    const [e] = errorsOf(loadConfigText('routes:\n  - id: r\n    upstream a\n    match: {}\n', FILE, {}));
    assert.equal(formatIssue(e!), '/virtual/conf/gw.yaml:3:5: Implicit keys need to be on a single line (line 3 "    upstream a")');
    const [f] = errorsOf(loadConfigText('listeners:\n  - name: a\n    port: [1, 2\nroutes: []\n', FILE, {}));
    assert.match(f!.message, /^Flow sequence in block collection must be sufficiently indented and end with a \] \(line 4 "routes: \[\]"\)$/);
  });

  it('treats duplicate YAML keys as errors, naming the key', () => {
    const text = rep(VALID, '    port: 8080\n', '    port: 8080\n    port: 8081\n');
    assert.deepEqual(brief(errorsOf(loadConfigText(text, FILE, {}))), [[5, 5, '', 'duplicate key "port"']]);
  });

  it('rejects several YAML documents in one file', () => {
    const errs = errorsOf(loadConfigText(`${VALID}---\n${VALID}`, FILE, {}));
    assert.ok(errs.length >= 1);
    assert.equal(errs[0]?.line, 14);
  });

  it('reports JSON syntax errors with line and column', () => {
    const [e] = errorsOf(loadConfigText('{\n  "listeners": [1,]\n}\n', '/v/gw.json', {}));
    assert.deepEqual([e?.line, e?.column], [2, 19]);
    assert.equal(e?.message, 'invalid JSON: unexpected "]"');
    assert.match(e?.message ?? '', /^invalid JSON: /);
    assert.ok(!(e?.message ?? '').includes('position'));
  });

  it('treats duplicate JSON keys as errors', () => {
    const text = '{\n  "listeners": [],\n  "listeners": []\n}\n';
    assert.deepEqual(brief(errorsOf(loadConfigText(text, '/v/gw.json', {}))), [[3, 3, '', 'duplicate key "listeners"']]);
  });

  it('gives JSON schema errors a position too', () => {
    const text = '{\n  "listeners": [{"name": "a", "port": 1, "adress": "x"}],\n  "routes": [{"id": "r", "match": {}, "respond": {"status": 200}}]\n}\n';
    assert.deepEqual(brief(errorsOf(loadConfigText(text, '/v/gw.json', {}))), [[2, 42, 'listeners[0].adress', 'unknown key "adress"; did you mean "address"?']]);
  });

  it('reports an empty or comment-only file as one issue', () => {
    for (const t of ['', '  \n\n', '# only a comment\n']) {
      assert.deepEqual(errorsOf(loadConfigText(t, FILE, {})).map((e) => e.message), ['configuration file is empty'], JSON.stringify(t));
    }
    assert.deepEqual(errorsOf(loadConfigText('', '/v/x.json', {})).map((e) => e.message), ['configuration file is empty']);
  });

  it('stops alias expansion bombs', () => {
    const lines = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 8; i++) lines.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${String.fromCharCode(96 + i)}`).join(', ')}]`);
    const errs = errorsOf(loadConfigText(`${lines.join('\n')}\n`, FILE, {}));
    assert.match(errs[0]?.message ?? '', /alias|resource/i);
  });
});

describe('substitution', () => {
  const withPort = rep(VALID, 'port: 8080', 'port: ${PORT}');

  it('replaces ${NAME} from the environment; a plain scalar gets its literal type', () => {
    const r = loadConfigText(withPort, FILE, { PORT: '8181' });
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.config.listeners[0]?.port, 8181);
  });

  it('keeps quoted substitutions as strings', () => {
    const r = loadConfigText(rep(VALID, 'port: 8080', 'port: "${PORT}"'), FILE, { PORT: '8181' });
    assert.deepEqual(brief(errorsOf(r)), [[4, 11, 'listeners[0].port', 'must be an integer']]);
  });

  it('reports a missing variable with the path and the variable name', () => {
    const r = loadConfigText(withPort, FILE, {});
    assert.deepEqual(brief(errorsOf(r)), [[4, 11, 'listeners[0].port', 'environment variable "PORT" is not set (use "${PORT:-default}" to give a default)']]);
  });

  it('uses ${NAME:-default} when unset or empty', () => {
    const text = rep(VALID, 'port: 8080', 'port: ${PORT:-9090}');
    for (const env of [{}, { PORT: '' }]) {
      const r = loadConfigText(text, FILE, env);
      assert.ok(r.ok);
      assert.equal(r.config.listeners[0]?.port, 9090);
    }
    const set = loadConfigText(text, FILE, { PORT: '7070' });
    assert.ok(set.ok);
    assert.equal(set.config.listeners[0]?.port, 7070);
  });

  it('substitutes inside longer strings and turns $${ into a literal ${', () => {
    const text = rep(VALID, '    upstream: demo\n', '    upstream: demo\n    responseHeaders:\n      set:\n        X-Env: "${STAGE}-$${NOT_A_VAR}-${MISSING:-x}"\n');
    const r = loadConfigText(text, FILE, { STAGE: 'prod' });
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.config.routes[0]?.responseHeaders?.set?.['X-Env'], 'prod-${NOT_A_VAR}-x');
  });

  it('reports unterminated and malformed expressions', () => {
    const a = loadConfigText(rep(VALID, 'id: root', 'id: "${OOPS"'), FILE, {});
    assert.deepEqual(errorsOf(a).map((e) => [e.path, e.message]), [['routes[0].id', 'unterminated "${" (write "$${" for a literal "${")']]);
    const b = loadConfigText(rep(VALID, 'id: root', 'id: "${not valid}"'), FILE, {});
    assert.match(errorsOf(b)[0]?.message ?? '', /^invalid substitution "\$\{not valid\}"/);
  });

  it('substitutes in JSON strings (no retyping)', () => {
    const json = '{"listeners": [{"name": "${NAME}", "port": 1}], "routes": [{"id": "r", "match": {}, "respond": {"status": 200}}]}';
    const r = loadConfigText(json, '/v/gw.json', { NAME: 'edge' });
    assert.ok(r.ok);
    assert.equal(r.config.listeners[0]?.name, 'edge');
  });

  it('keeps substituted values out of messages', () => {
    const secret = 'Bearer s3cr3t-t0ken';
    const text = rep(VALID, '    upstream: demo\n', '    upstream: demo\n    requestHeaders:\n      set:\n        Authorization: "${TOKEN}"\n');
    const r = loadConfigText(text, FILE, { TOKEN: `${secret}\r\nX-Evil: 1` });
    const errs = errorsOf(r);
    assert.deepEqual(errs.map((e) => [e.path, e.message]), [['routes[0].requestHeaders.set.Authorization', 'header value must not contain CR, LF or NUL']]);
    assert.ok(!JSON.stringify(r).includes('s3cr3t'));
    // a message that would echo the value shows the ${...} text instead
    const proxies = loadConfigText(`server:\n  trustedProxies: ["\${PROXY}"]\n${VALID}`, FILE, { PROXY: 'hunter2-secret' });
    const [e] = errorsOf(proxies);
    assert.equal(e?.path, 'server.trustedProxies[0]');
    assert.ok(!e?.message.includes('hunter2'), e?.message);
    assert.ok(e?.message.includes('${PROXY}'), e?.message);
  });

  describe('${file:...}', () => {
    let dir = '';
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'portcullis-load-'));
      await mkdir(join(dir, 'secrets'));
      await writeFile(join(dir, 'secrets', 'token'), 'tok-123\n');
      await writeFile(join(dir, 'body.txt'), 'line 1\nline 2\n\n');
    });
    after(async () => { await rm(dir, { recursive: true, force: true }); });

    it('reads a file relative to the config file, dropping one trailing newline', () => {
      const text = rep(VALID, '    upstream: demo\n', '    upstream: demo\n    requestHeaders:\n      set:\n        X-Token: ${file:secrets/token}\n');
      const r = loadConfigText(text, join(dir, 'gw.yaml'), {});
      assert.ok(r.ok, JSON.stringify(r));
      assert.equal(r.config.routes[0]?.requestHeaders?.set?.['X-Token'], 'tok-123');
    });

    it('accepts absolute paths and keeps other newlines', () => {
      const text = `${VALID}  - id: body\n    match: { path: /body }\n    respond: { status: 200, body: "\${file:${join(dir, 'body.txt')}}" }\n`;
      const r = loadConfigText(text, '/somewhere/else/gw.yaml', {});
      assert.ok(r.ok, JSON.stringify(r));
      assert.equal(r.config.routes[1]?.respond?.body, 'line 1\nline 2\n');
    });

    it('reports a missing file with its resolved path', () => {
      const text = rep(VALID, 'id: root', 'id: ${file:nope.txt}');
      const [e] = errorsOf(loadConfigText(text, join(dir, 'gw.yaml'), {}));
      assert.equal(e?.path, 'routes[0].id');
      assert.deepEqual([e?.line, e?.column], [10, 9]);
      assert.equal(e?.message, `cannot read "${join(dir, 'nope.txt')}" for "\${file:nope.txt}": file not found`);
    });
  });
});

describe('loadConfigFile', () => {
  let dir = '';
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'portcullis-loadfile-')); });
  after(async () => { await rm(dir, { recursive: true, force: true }); });

  it('loads a file from disk', async () => {
    const f = join(dir, 'ok.yml');
    await writeFile(f, VALID);
    const r = await loadConfigFile(f, {});
    assert.ok(r.ok);
    assert.equal(r.file, f);
  });

  it('parses unknown extensions as YAML', async () => {
    const f = join(dir, 'gateway.conf');
    await writeFile(f, VALID);
    assert.ok((await loadConfigFile(f, {})).ok);
  });

  it('turns a missing file, a directory and an empty file into one issue each', async () => {
    const missing = await loadConfigFile(join(dir, 'missing.yaml'), {});
    assert.deepEqual(errorsOf(missing).map((e) => e.message), ['cannot read configuration file: file not found']);
    const isDir = await loadConfigFile(dir, {});
    assert.deepEqual(errorsOf(isDir).map((e) => e.message), ['is a directory, not a configuration file']);
    const empty = join(dir, 'empty.yaml');
    await writeFile(empty, '');
    assert.deepEqual(errorsOf(await loadConfigFile(empty, {})).map((e) => e.message), ['configuration file is empty']);
  });

  it('uses process.env by default', async () => {
    const f = join(dir, 'env.yaml');
    await writeFile(f, rep(VALID, 'port: 8080', 'port: ${PORTCULLIS_LOAD_TEST_PORT}'));
    process.env.PORTCULLIS_LOAD_TEST_PORT = '8282';
    try {
      const r = await loadConfigFile(f);
      assert.ok(r.ok);
      assert.equal(r.config.listeners[0]?.port, 8282);
    } finally {
      delete process.env.PORTCULLIS_LOAD_TEST_PORT;
    }
  });
});

describe('formatIssue', () => {
  it('formats errors and warnings', () => {
    assert.equal(formatIssue({ file: 'examples/bad.yaml', path: 'routes[1].match.path', message: 'must match pattern "^/"', line: 14, column: 9, severity: 'error' }),
      'examples/bad.yaml:14:9: routes[1].match.path: must match pattern "^/"');
    assert.equal(formatIssue({ file: 'a.yaml', path: 'x', message: 'hm', line: 1, column: 2, severity: 'warning' }), 'warning: a.yaml:1:2: x: hm');
    assert.equal(formatIssue({ file: 'a.yaml', path: '', message: 'is a directory', severity: 'error' }), 'a.yaml: is a directory');
  });
});

describe('loadConfigText: nesting depth', () => {
  const n = 20_000;
  const deepMessage = /^nested more than 64 levels deep/;

  it('refuses a 20,000-deep JSON document with file, line and path (no stack overflow)', () => {
    const text = `{\n  "routes":\n    ${'['.repeat(n)}${']'.repeat(n)}\n}\n`;
    const [e, ...rest] = errorsOf(loadConfigText(text, '/virtual/deep.json', {}));
    assert.deepEqual(rest, []);
    assert.equal(e?.file, '/virtual/deep.json');
    assert.equal(e?.line, 3);
    assert.equal(e?.path, `routes${'[0]'.repeat(63)}`);
    assert.match(e?.message ?? '', deepMessage);
    assert.match(formatIssue(e!), /^\/virtual\/deep\.json:3:\d+: routes\[0\]/);
  });

  it('refuses deep YAML: flow collections and compact block sequences', () => {
    const flow = `listeners: []\nroutes:\n  - id: a\n    match: ${'{a: '.repeat(n)}1${'}'.repeat(n)}\n`;
    const [f] = errorsOf(loadConfigText(flow, FILE, {}));
    assert.equal(f?.line, 4);
    assert.equal(f?.path, `routes[0].match${'.a'.repeat(61)}`);
    assert.match(f?.message ?? '', deepMessage);
    const compact = `routes:\n  ${'- '.repeat(n)}x\n`;
    const [c] = errorsOf(loadConfigText(compact, FILE, {}));
    assert.equal(c?.line, 2);
    assert.match(c?.message ?? '', deepMessage);
  });

  it('refuses a deep value given as an object, and accepts 64 levels', () => {
    let v: unknown = 1;
    for (let i = 0; i < n; i++) v = [v];
    const [e] = errorsOf(validateConfig({ listeners: [], routes: v }));
    assert.match(e?.message ?? '', deepMessage);
    let ok: unknown = 'x';
    for (let i = 0; i < 62; i++) ok = { a: ok };
    const r = validateConfig({ listeners: [], routes: [], x: ok });
    assert.ok(!r.ok && r.errors.every((i) => !deepMessage.test(i.message)));
  });
});

describe('loadConfigText: optional secrets', () => {
  const text = `${VALID}identity:\n  pepper: \${PEPPER_VAR}\n`;
  it('an unset variable at an optional path becomes a placeholder, listed in the result', () => {
    const r = loadConfigText(text, FILE, {}, { optionalSecrets: ['identity.pepper'] });
    assert.ok(r.ok, JSON.stringify(r));
    assert.deepEqual(r.placeholders, ['identity.pepper']);
    assert.equal(r.config.identity?.pepper, PLACEHOLDER_SECRET);
  });
  it('is an error everywhere else, and without the option', () => {
    assert.match(errorsOf(loadConfigText(text, FILE, {})).map((e) => e.message).join(), /"PEPPER_VAR" is not set/);
    const other = rep(VALID, 'address: 127.0.0.1', 'address: ${ADDR}');
    assert.match(errorsOf(loadConfigText(other, FILE, {}, { optionalSecrets: ['identity.pepper'] }))[0]!.message, /"ADDR" is not set/);
    const set = loadConfigText(text, FILE, { PEPPER_VAR: 'p'.repeat(40) }, { optionalSecrets: ['identity.pepper'] });
    assert.ok(set.ok && set.placeholders === undefined && set.config.identity?.pepper === 'p'.repeat(40));
  });
});
