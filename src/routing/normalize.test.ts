import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodePathForUpstream, foldsToPathSyntax, normalizeRequestTarget, type NormalizeResult } from './normalize.js';
import { rng } from '../../test/helpers/random.js';

type Expect = { path: string; query?: string } | { reject: RegExp };

function check(target: string, want: Expect, opts?: Parameters<typeof normalizeRequestTarget>[1]): void {
  const got: NormalizeResult = normalizeRequestTarget(target, opts);
  if ('reject' in want) {
    assert.equal(got.ok, false, `${JSON.stringify(target)} should be rejected, got ${JSON.stringify(got)}`);
    if (!got.ok) assert.match(got.reason, want.reject, `reason for ${JSON.stringify(target)}`);
  } else {
    assert.deepEqual(got, { ok: true, path: want.path, query: want.query ?? '' }, `for ${JSON.stringify(target)}`);
  }
}

test('attack table', () => {
  const attacks: [string, Expect][] = [
    ['/admin/..;/', { reject: /path parameter on dot segment/ }],
    ['/a/.;x/admin', { reject: /path parameter on dot segment/ }],
    ['/a/%2e%2e;x/admin', { reject: /path parameter on dot segment/ }], // decoded before the check
    ['/a/..%3b/admin', { reject: /path parameter on dot segment/ }], // %3B is sent upstream as a raw ';'
    // encoded dots are decoded, then resolved: routing and upstream both see /admin
    ['/%2e%2e/admin', { path: '/admin' }],
    ['/public/%2e%2e/admin', { path: '/admin' }],
    ['/%2E%2e%2fadmin', { reject: /encoded slash/ }],
    ['/a%2Fb', { reject: /encoded slash/ }],
    ['//admin', { path: '/admin' }],
    ['/a/%252e%252e/', { reject: /double percent-encoding/ }],
    ['/a/%25%32%65', { reject: /double percent-encoding/ }], // '%2e' spelled with escapes after %25
    ['/a%00b', { reject: /control character/ }],
    ['/a%0d%0aSet-Cookie:x', { reject: /control character/ }],
    ['/a%7f', { reject: /control character/ }],
    ['/a\u0001b', { reject: /control character/ }],
    ['/a\\b', { reject: /backslash/ }],
    ['/%5cadmin', { reject: /encoded backslash/ }],
    ['/%5Cadmin', { reject: /encoded backslash/ }],
    ['/%c0%ae%c0%ae/', { reject: /invalid UTF-8/ }], // overlong '.'
    ['/%c0%af', { reject: /invalid UTF-8/ }], // overlong '/'
    ['/%e0%80%ae', { reject: /invalid UTF-8/ }], // 3-byte overlong '.'
    ['/%ed%a0%80', { reject: /invalid UTF-8/ }], // UTF-16 surrogate
    ['/%80', { reject: /invalid UTF-8/ }], // lone continuation byte
    ['/%ff', { reject: /invalid UTF-8/ }],
    ['/a#frag', { reject: /fragment/ }],
    ['/a?x=1#frag', { reject: /fragment/ }],
    ['/%', { reject: /invalid percent-encoding/ }],
    ['/%4', { reject: /invalid percent-encoding/ }],
    ['/%G0', { reject: /invalid percent-encoding/ }],
    ['/a%zz', { reject: /invalid percent-encoding/ }],
    ['/\u00ff', { reject: /non-ASCII/ }], // raw byte 0xFF as Node hands it over (latin1)
    ['/caf\u00c3\u00a9', { reject: /non-ASCII/ }], // raw UTF-8 bytes, not percent-encoded
    ['/a?q=\u00e9', { reject: /non-ASCII/ }],
    ['/a b', { reject: /space/ }],
    ['/a?q=\r\n', { reject: /control character/ }],
    ['*', { reject: /asterisk-form not supported/ }],
    ['example.com:443', { reject: /origin-form/ }],
    ['a/b', { reject: /origin-form/ }],
    ['', { reject: /origin-form/ }],
    ['ftp://h/x', { reject: /origin-form/ }],
    ['http://user@evil/x', { reject: /authority/ }],
    ['http:///x', { reject: /authority/ }],
  ];
  for (const [target, want] of attacks) check(target, want);
});

test('legitimate targets pass unchanged or normalize as expected', () => {
  const ok: [string, Expect][] = [
    ['/', { path: '/' }],
    ['/api/v1/users/42', { path: '/api/v1/users/42' }],
    ['/a/./b', { path: '/a/b' }],
    ['/a/b/../c', { path: '/a/c' }],
    ['/../a', { path: '/a' }],
    ['/a/../../../b', { path: '/b' }],
    ['/a/..', { path: '/' }],
    ['/a/b/..', { path: '/a/' }],
    ['/a/.', { path: '/a/' }],
    ['/a//b//', { path: '/a/b/' }],
    ['/%61dmin', { path: '/admin' }],
    ['/caf%C3%A9', { path: '/café' }],
    ['/caf%c3%a9', { path: '/café' }],
    ['/%F0%9F%98%80', { path: '/😀' }],
    ['/a;v=1/b', { reject: /semicolon in path/ }],
    ['/admin;x', { reject: /semicolon in path/ }],
    ['/admin%3Bx', { reject: /semicolon in path/ }],
    ['/a/..b/.c', { path: '/a/..b/.c' }], // only exact '.'/'..' segments are special
    ['/~user', { path: '/~user' }],
    ['/search?q=%2F..%2F', { path: '/search', query: 'q=%2F..%2F' }],
    ['/a?', { path: '/a', query: '' }],
    ['/a?b?c', { path: '/a', query: 'b?c' }],
    ['/a/', { path: '/a/' }],
    ['/a%20b', { path: '/a b' }],
    ['/100%25', { path: '/100%' }], // a decoded '%' not followed by two hex digits is fine
    ['/a%3Fb', { path: '/a?b' }],
    ['/.well-known/x', { path: '/.well-known/x' }],
    ['/a/b.', { path: '/a/b.' }],
    ['http://example.com/a/../b?x=1', { path: '/b', query: 'x=1' }],
    ['HTTPS://example.com:8443/p', { path: '/p' }],
    ['http://example.com', { path: '/' }],
    ['http://example.com?x', { path: '/', query: 'x' }],
  ];
  for (const [target, want] of ok) check(target, want);
});

test('look-alikes: characters that fold into ".", "/" or "\\" are refused, other non-ASCII text is not', () => {
  const enc = (s: string): string => encodeURIComponent(s);
  const lookalike = /folds into path syntax/;
  const refused: [string, string][] = [
    ['\uFF0E', 'FULLWIDTH FULL STOP (NFKC .)'],
    ['\uFF0F', 'FULLWIDTH SOLIDUS (NFKC /)'],
    ['\uFF3C', 'FULLWIDTH REVERSE SOLIDUS (NFKC \\)'],
    ['\u2215', 'DIVISION SLASH (best-fit /)'],
    ['\u2044', 'FRACTION SLASH (best-fit /)'],
    ['\u2216', 'SET MINUS (best-fit \\)'],
    ['\u2024', 'ONE DOT LEADER (NFKC .)'],
    ['\u2025', 'TWO DOT LEADER (NFKC ..)'],
    ['\u2026', 'HORIZONTAL ELLIPSIS (NFKC ...)'],
    ['\u3002', 'IDEOGRAPHIC FULL STOP (best-fit .)'],
    ['\uFF61', 'HALFWIDTH IDEOGRAPHIC FULL STOP'],
    ['\uFE52', 'SMALL FULL STOP (NFKC .)'],
    ['\uFE68', 'SMALL REVERSE SOLIDUS (NFKC \\)'],
    ['\u29F8', 'BIG SOLIDUS (best-fit /)'],
    ['\u00A5', 'YEN SIGN (0x5C in cp932)'],
    ['\u20A9', 'WON SIGN (0x5C in cp949)'],
    ['\u2100', 'ACCOUNT OF (NFKC a/c)'],
    ['\u2488', 'DIGIT ONE FULL STOP (NFKC 1.)'],
    ['\u{1F100}', 'DIGIT ZERO FULL STOP (NFKC 0., astral)'],
  ];
  for (const [ch, name] of refused) {
    for (const seg of [ch + ch, 'a' + ch + 'b', '..' + ch, ch]) {
      check('/public/' + enc(seg) + '/admin', { reject: lookalike });
      check('/' + enc(seg), { reject: lookalike });
    }
    assert.ok(/\S/.test(name));
  }
  // a look-alike in the query string is the backend's business: the query is forwarded raw
  check('/a?q=' + enc('\uFF0E\uFF0E'), { path: '/a', query: 'q=%EF%BC%8E%EF%BC%8E' });
  // dot segments with trailing dots or whitespace: '..' on Windows
  for (const t of ['/a/..%20/admin', '/a/.%20/admin', '/a/.../admin', '/a/..../x', '/a/..%20./admin', '/a/.%20.%20', '/...',
    '/a/..%C2%A0/admin', '/a/..%E3%80%80/admin', '/a/.%E2%80%83']) {
    check(t, { reject: /dot segment with trailing dots or spaces/ });
  }
  // ordinary non-ASCII text, and dots that are not dot segments, pass
  const ok: [string, string][] = [
    ['/caf%C3%A9/%E6%97%A5%E6%9C%AC%E8%AA%9E', '/café/日本語'],
    ['/%F0%9F%98%80/%F0%9F%91%8D%F0%9F%8F%BD', '/😀/👍🏽'],
    ['/%D0%BF%D1%80%D0%B8%D0%B2%D0%B5%D1%82.txt', '/привет.txt'],
    ['/%ED%95%9C%EA%B5%AD%EC%96%B4', '/한국어'],
    ['/%EF%BD%81%EF%BD%84', '/ａｄ'], // full-width letters fold to letters, not to path syntax
    ['/a/...b/.c./..d', '/a/...b/.c./..d'],
    ['/a/b..', '/a/b..'],
    ['/a/%20..', '/a/ ..'],
    ['/a%C2%A0b', '/a\u00a0b'],
  ];
  for (const [t, p] of ok) check(t, { path: p });
  for (const cp of [0xe9, 0x65e5, 0x1f600, 0xff41]) assert.equal(foldsToPathSyntax(cp), false);
  for (const cp of [0xff0e, 0xff0f, 0xff3c, 0x2215, 0x3002, 0xfe68]) assert.equal(foldsToPathSyntax(cp), true);
});

test('fast path returns the very same string when nothing needs changing', () => {
  const t = '/api/v1/users/42';
  const r = normalizeRequestTarget(t);
  assert.ok(r.ok);
  assert.equal(r.path, t);
  // dot and slash edge cases must leave the fast path and be normalized
  check('/a/..', { path: '/' });
  check('/a/.?x', { path: '/a/', query: 'x' });
  check('/.', { path: '/' });
  check('//', { path: '/' });
});

test('allowSemicolon keeps ; literally (but never on dot segments)', () => {
  check('/a;v=1/b', { path: '/a;v=1/b' }, { allowSemicolon: true });
  check('/a/..;/admin', { reject: /path parameter on dot segment/ }, { allowSemicolon: true });
});

test('allowEncodedSlash makes %2F a separator; allowBackslash makes \\ one', () => {
  check('/a%2Fb', { path: '/a/b' }, { allowEncodedSlash: true });
  check('/a/..%2F..%2Fetc', { path: '/etc' }, { allowEncodedSlash: true });
  check('/a%5Cb', { reject: /encoded backslash/ }, { allowEncodedSlash: true, allowBackslash: true });
  check('/a\\..\\admin', { path: '/admin' }, { allowBackslash: true });
  check('/a\\b', { reject: /backslash/ }, { allowEncodedSlash: true });
});

test('encodePathForUpstream keeps segment-safe bytes and escapes the rest', () => {
  assert.equal(encodePathForUpstream('/api/v1/users/42'), '/api/v1/users/42');
  assert.equal(encodePathForUpstream("/a;b=c,d/:@!$&'()*+=~-._"), "/a;b=c,d/:@!$&'()*+=~-._");
  assert.equal(encodePathForUpstream('/café'), '/caf%C3%A9');
  assert.equal(encodePathForUpstream('/a b/100%/?#'), '/a%20b/100%25/%3F%23');
  assert.equal(encodePathForUpstream('/😀'), '/%F0%9F%98%80');
  assert.equal(encodePathForUpstream('/"<>\\^`{|}'), '/%22%3C%3E%5C%5E%60%7B%7C%7D');
});

// Deterministic PRNG so a failure is reproducible.

const POOL = [
  ...'abcXYZ019-._~!$&\'()*+,;=:@ "<>^`{|}?#[]%',
  'é', 'ß', '€', '中', '😀', '\u00a0', '\u2028',
];

function randomSegment(r: () => number): string {
  for (;;) {
    let s = '';
    const n = 1 + Math.floor(r() * 8);
    for (let i = 0; i < n; i++) s += POOL[Math.floor(r() * POOL.length)]!;
    // Exclude what a normalized path can never contain.
    if (/^\.[.\s]*$/.test(s.normalize('NFKC')) || s.startsWith('.;') || s.startsWith('..;')) continue;
    if (/%[0-9A-Fa-f]{2}/.test(s)) continue;
    return s;
  }
}

test('property: encodePathForUpstream round-trips every normalized path', () => {
  const r = rng(12345);
  for (let i = 0; i < 500; i++) {
    const segs: string[] = [];
    const n = Math.floor(r() * 5);
    for (let k = 0; k < n; k++) segs.push(randomSegment(r));
    // join may create '%' + hex across segment boundaries only via '/', which is not hex: safe
    const p = '/' + segs.join('/') + (n > 0 && r() < 0.3 ? '/' : '');
    if (/%[0-9A-Fa-f]{2}/.test(p)) continue;
    const enc = encodePathForUpstream(p);
    assert.match(enc, /^[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*$/, `encoded form is plain ASCII: ${enc}`);
    const back = normalizeRequestTarget(enc, { allowSemicolon: true });
    assert.deepEqual(back, { ok: true, path: p, query: '' }, `round trip of ${JSON.stringify(p)} via ${enc}`);
  }
});

test('property: normalization is idempotent through the upstream encoding', () => {
  const r = rng(777);
  const atoms = ['/', '/', '.', '..', '%2e', '%2E', 'a', 'B', '%41', ';', '%3B', '%25', '%20', '%C3%A9', '~', '?x'];
  let accepted = 0;
  for (let i = 0; i < 2000; i++) {
    let t = '/';
    const n = 1 + Math.floor(r() * 10);
    for (let k = 0; k < n; k++) t += atoms[Math.floor(r() * atoms.length)]!;
    const first = normalizeRequestTarget(t);
    if (!first.ok) continue;
    accepted++;
    const again = normalizeRequestTarget(encodePathForUpstream(first.path));
    assert.deepEqual(again, { ok: true, path: first.path, query: '' }, `idempotence for ${JSON.stringify(t)}`);
    assert.ok(!/(^|\/)\.\.?(\/|$)/.test(first.path), `no dot segments left in ${first.path}`);
    assert.ok(!first.path.includes('//'), `no empty segments in ${first.path}`);
  }
  assert.ok(accepted > 200, `enough accepted samples (${accepted})`);
});

test('never throws on arbitrary input', () => {
  const r = rng(99);
  for (let i = 0; i < 2000; i++) {
    let t = r() < 0.8 ? '/' : '';
    const n = Math.floor(r() * 20);
    for (let k = 0; k < n; k++) t += String.fromCharCode(Math.floor(r() * 0x110));
    assert.doesNotThrow(() => normalizeRequestTarget(t), JSON.stringify(t));
  }
});
