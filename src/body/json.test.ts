import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { firstInvalidUtf8, jsonParsePosition, parseJsonLimited, scanJson } from './json.js';
import type { JsonLimits, JsonResult } from './json.js';
import { rng } from '../../test/helpers/random.js';

const L: JsonLimits = { maxDepth: 64, maxKeys: 10_000, maxStringLength: 1_048_576, maxArrayLength: 10_000 };
const LOOSE: JsonLimits = { maxDepth: 1e9, maxKeys: 1e9, maxStringLength: 1e9, maxArrayLength: 1e9 };

function refused(r: JsonResult, code: string) {
  if (r.ok) assert.fail(`expected ${code}, got a value`);
  assert.equal(r.code, code, r.detail);
  return r;
}


describe('parseJsonLimited: well-formed documents', () => {
  const good = [
    '0', '-0', '1.5e-3', '-12E+7', '123', 'true', 'false', 'null', '""', '"a\\"b\\\\c\\/\\b\\f\\n\\r\\t\\u00e9\\uD83D\\uDE00"',
    '[]', '{}', ' \t\r\n[ 1 , 2 ]\n', '{"a":{"b":[{},[],""]}}', '"\u00e9\ud83d\ude00"', '{"":1}', '[[[[[]]]]]',
    '{"constructor":1}', '{"constructor":{"name":"x"}}', '{"prototype":{}}', '{"a":{"prototype":1}}', '{"constructor":[{"prototype":1}]}',
    '{"__proto":1,"proto__":2,"__PROTO__":3}', '{"a":1,"b":{"a":2}}', '[{"a":1},{"a":1}]',
  ];
  for (const s of good) {
    it(`accepts ${JSON.stringify(s)} with the JSON.parse value`, () => {
      const r = parseJsonLimited(s, L);
      if (!r.ok) assert.fail(r.detail);
      assert.deepEqual(r.value, JSON.parse(s));
    });
  }
  it('decodes a Buffer as UTF-8', () => {
    const r = parseJsonLimited(Buffer.from('{"k":"\u00e9\u4e2d\ud83d\ude00"}'), L);
    assert.ok(r.ok);
    assert.deepEqual(r.value, { k: '\u00e9\u4e2d\ud83d\ude00' });
  });
});

describe('parseJsonLimited: malformed JSON and positions', () => {
  const cases: [string, number][] = [
    ['', 0], ['   ', 3], ['{', 1], ['[1', 2], ['[1,]', 3], ['{"a":}', 5], ['{"a" 1}', 5], ['{"a":1,}', 7], ['{,}', 1],
    ['[01]', 2], ['[1.]', 3], ['[1e]', 3], ['[-]', 2], ['[.5]', 1], ['[+1]', 1], ['tru', 0], ['nul', 0], ['True', 0],
    ['"abc', 4], ['"a\\x"', 2], ['"\\u12G4"', 5], ['"\\u12', 5], ['"a\u0001"', 2], ['"a\nb"', 2], ['{"a":1}x', 7], ['[1] [2]', 4],
    ['{"a":1 "b":2}', 7], ["{'a':1}", 1], ['[1,,2]', 3], ['{"a"', 4], ['[\u00a01]', 1], ['NaN', 0], ['[Infinity]', 1],
    ['{"a":1]', 6], ['[1}', 2], ['"\\', 2],
  ];
  for (const [s, pos] of cases) {
    it(`${JSON.stringify(s)}: malformed-json at ${pos}`, () => {
      assert.throws(() => JSON.parse(s)); // the test data itself must be invalid JSON
      const r = refused(parseJsonLimited(s, L), 'malformed-json');
      assert.equal(r.position, pos, r.detail);
      const native = jsonParsePosition((() => { try { JSON.parse(s); return ''; } catch (e) { return (e as Error).message; } })());
      // When V8 reports a position, ours must be the same place or at most at the end of the same token.
      if (native !== undefined) assert.ok(Math.abs(native - pos) <= 1, `V8 says ${native}, we say ${pos}`);
    });
  }

  it('extracts "at position N" from V8 messages and tolerates its absence', () => {
    assert.equal(jsonParsePosition('Unexpected number in JSON at position 2'), 2);
    assert.equal(jsonParsePosition('Expected \',\' or \']\' after array element in JSON at position 12 (line 1 column 13)'), 12);
    assert.equal(jsonParsePosition('Unexpected token \'}\', "{"a":}" is not valid JSON'), undefined);
  });

  it('refuses a leading byte order mark, as a string or as bytes', () => {
    assert.equal(refused(parseJsonLimited('\ufeff{}', L), 'malformed-json').position, 0);
    assert.equal(refused(parseJsonLimited(Buffer.from([0xef, 0xbb, 0xbf, 0x7b, 0x7d]), L), 'malformed-json').position, 0);
  });

  it('refuses invalid UTF-8 with the byte offset', () => {
    const cases: [number[], number][] = [
      [[0x22, 0xff, 0x22], 1],
      [[0x22, 0x61, 0xc3, 0x22], 2], // truncated 2-byte sequence
      [[0x22, 0xc0, 0xaf, 0x22], 1], // overlong "/"
      [[0x22, 0xe0, 0x80, 0xaf, 0x22], 1], // overlong 3-byte
      [[0x22, 0xed, 0xa0, 0x80, 0x22], 1], // UTF-16 surrogate encoded
      [[0x22, 0xf4, 0x90, 0x80, 0x80, 0x22], 1], // above U+10FFFF
      [[0x22, 0xc3, 0xa9, 0x80, 0x22], 3], // stray continuation byte after a valid é
      [[0x22, 0xf0, 0x9f, 0x98], 1], // truncated at the end
    ];
    for (const [bytes, at] of cases) {
      const r = refused(parseJsonLimited(Buffer.from(bytes), L), 'invalid-utf8');
      assert.equal(r.position, at, JSON.stringify(bytes));
    }
  });

  it('firstInvalidUtf8 agrees with the native validator on random bytes', () => {
    const r = rng(11);
    for (let k = 0; k < 3000; k++) {
      const len = Math.floor(r() * 8);
      const b = Buffer.alloc(len);
      for (let i = 0; i < len; i++) b[i] = r() < 0.5 ? 0x80 + Math.floor(r() * 0x80) : Math.floor(r() * 256);
      const at = firstInvalidUtf8(b);
      const valid = (() => { try { new TextDecoder('utf-8', { fatal: true }).decode(b); return true; } catch { return false; } })();
      assert.equal(at === -1, valid, b.toString('hex'));
      if (at > 0) {
        // everything before the reported offset is a valid UTF-8 prefix
        new TextDecoder('utf-8', { fatal: true }).decode(b.subarray(0, at));
      }
    }
  });
});

describe('parseJsonLimited: limits, just under and just over', () => {
  it('maxDepth: the top-level container is depth 1', () => {
    const lim = { ...L, maxDepth: 3 };
    assert.ok(parseJsonLimited('[[[]]]', lim).ok);
    assert.ok(parseJsonLimited('{"a":{"b":[1]}}', lim).ok);
    assert.ok(parseJsonLimited('"scalar"', { ...L, maxDepth: 0 }).ok);
    const r = refused(parseJsonLimited('[[[[]]]]', lim), 'json-too-deep');
    assert.equal(r.position, 3);
    assert.equal(r.pointer, '/0/0/0');
    assert.equal(refused(parseJsonLimited('{"a":{"b":[{}]}}', lim), 'json-too-deep').pointer, '/a/b/0');
  });

  it('refuses 100,000-deep nesting quickly and without recursion', () => {
    for (const [open, close] of [['[', ']'], ['{"a":', '}']] as const) {
      const s = open.repeat(100_000) + '1' + close.repeat(100_000);
      const t0 = performance.now();
      const r = refused(parseJsonLimited(s, L), 'json-too-deep');
      const ms = performance.now() - t0;
      assert.ok(ms < 50, `took ${ms} ms`);
      assert.equal(r.pointer?.split('/').length, 65);
    }
    // Unterminated, too: the limit comes before the syntax error at the end.
    refused(parseJsonLimited('['.repeat(100_000), L), 'json-too-deep');
  });

  it('scans 100,000-deep nesting without a stack overflow when the limit allows it', () => {
    const s = '['.repeat(100_000) + ']'.repeat(100_000);
    assert.equal(scanJson(s, LOOSE), null);
    assert.equal(scanJson(s + ']', LOOSE)?.position, 200_000);
  });

  it('maxKeys counts members across the whole document', () => {
    const lim = { ...L, maxKeys: 5 };
    assert.ok(parseJsonLimited('{"a":1,"b":{"c":2},"d":[{"e":3}]}', lim).ok);
    const r = refused(parseJsonLimited('{"a":1,"b":{"c":2},"d":[{"e":3,"f":4}]}', lim), 'json-too-many-keys');
    assert.equal(r.pointer, '/d/0');
  });

  it('maxStringLength applies to values and keys, in UTF-16 units after unescaping', () => {
    const lim = { ...L, maxStringLength: 4 };
    assert.ok(parseJsonLimited('["abcd","\\u0061\\n\\"\\\\","\ud83d\ude00\ud83d\ude00",{"wxyz":1}]', lim).ok);
    assert.equal(refused(parseJsonLimited('["abcde"]', lim), 'json-string-too-long').pointer, '/0');
    assert.equal(refused(parseJsonLimited('["\\u0061\\u0062\\u0063\\u0064\\u0065"]', lim), 'json-string-too-long').position, 1);
    assert.equal(refused(parseJsonLimited('{"k":{"vwxyz":1}}', lim), 'json-string-too-long').pointer, '/k');
    refused(parseJsonLimited('"\ud83d\ude00\ud83d\ude00\ud83d\ude00"', lim), 'json-string-too-long');
  });

  it('maxArrayLength applies to every array', () => {
    const lim = { ...L, maxArrayLength: 3 };
    assert.ok(parseJsonLimited('[1,2,3]', lim).ok);
    assert.ok(parseJsonLimited('[[1,2,3],[],[[1,2,3]]]', lim).ok);
    const r = refused(parseJsonLimited('{"a":[[1,2,3,4]]}', lim), 'json-array-too-long');
    assert.equal(r.pointer, '/a/0');
    assert.equal(r.position, 13);
    refused(parseJsonLimited('[' + '0,'.repeat(10_000) + '0]', L), 'json-array-too-long');
    assert.ok(parseJsonLimited('[' + '0,'.repeat(9_999) + '0]', L).ok);
  });
});

describe('parseJsonLimited: duplicate and forbidden keys', () => {
  it('refuses duplicate member names with the pointer of the object', () => {
    assert.equal(refused(parseJsonLimited('{"a":1,"a":2}', L), 'duplicate-json-key').pointer, '');
    const nested = refused(parseJsonLimited('{"x":[0,{"y":{"b":1,"c":2,"b":3}}]}', L), 'duplicate-json-key');
    assert.equal(nested.pointer, '/x/1/y');
    assert.equal(nested.position, 26);
  });

  it('compares names after unescaping: "a" and "\\u0061" are the same', () => {
    refused(parseJsonLimited('{"a":1,"\\u0061":2}', L), 'duplicate-json-key');
    refused(parseJsonLimited('{"\\u00e9":1,"\u00e9":2}', L), 'duplicate-json-key');
    refused(parseJsonLimited('{"a/b":1,"a\\/b":2}', L), 'duplicate-json-key');
    assert.ok(parseJsonLimited('{"a":1,"A":2,"\\u0041\\u0061":3}', L).ok);
  });

  it('finds duplicates in large objects too (set after 16 members)', () => {
    const members = Array.from({ length: 500 }, (_, i) => `"k${i}":${i}`);
    assert.ok(parseJsonLimited(`{${members.join(',')}}`, L).ok);
    refused(parseJsonLimited(`{${members.join(',')},"k3":0}`, L), 'duplicate-json-key');
    refused(parseJsonLimited(`{${members.join(',')},"\\u006b499":0}`, L), 'duplicate-json-key');
  });

  it('escapes ~ and / in pointers (RFC 6901)', () => {
    assert.equal(refused(parseJsonLimited('{"a/b":{"c~d":{"z":1,"z":1}}}', L), 'duplicate-json-key').pointer, '/a~1b/c~0d');
  });

  it('refuses __proto__ anywhere, escaped or not', () => {
    for (const s of ['{"__proto__":{}}', '{"a":[{"__proto__":1}]}', '{"\\u005f_proto__":null}', '[{"x":{"__proto__":[]}}]']) {
      refused(parseJsonLimited(s, L), 'forbidden-json-key');
    }
    assert.equal(refused(parseJsonLimited('{"a":[{"__proto__":1}]}', L), 'forbidden-json-key').pointer, '/a/0/__proto__');
    assert.ok(parseJsonLimited('["__proto__",{"k":"__proto__"}]', L).ok);
  });

  it('refuses constructor.prototype, escaped or not', () => {
    assert.equal(refused(parseJsonLimited('{"constructor":{"prototype":{"isAdmin":true}}}', L), 'forbidden-json-key').pointer, '/constructor/prototype');
    refused(parseJsonLimited('{"a":{"b":{"constructor":{"x":1,"prototype":1}}}}', L), 'forbidden-json-key');
    refused(parseJsonLimited('{"\\u0063onstructor":{"prototyp\\u0065":1}}', L), 'forbidden-json-key');
  });
});

describe('scanJson agrees with JSON.parse (differential fuzz)', () => {
  it('on random mutations of valid documents', () => {
    const r = rng(42);
    const seeds = [
      '{"a":[1,2.5,-3e2,{"b":null,"c":true}],"d":"x\\u0041\\n","e":{}}',
      '[[],{},"",0,false]',
      '{"k":"v","n":[{"m":[[[1]]]}]}',
    ];
    const alphabet = '{}[]",:\\ 0123456789.eE+-tfnlrsau\t\n\u00e9\u0001/';
    let accepted = 0;
    for (let k = 0; k < 20_000; k++) {
      let s = seeds[k % seeds.length]!;
      const edits = 1 + Math.floor(r() * 3);
      for (let e = 0; e < edits; e++) {
        const at = Math.floor(r() * (s.length + 1));
        const op = r();
        const ch = alphabet[Math.floor(r() * alphabet.length)]!;
        if (op < 0.33) s = s.slice(0, at) + ch + s.slice(at);
        else if (op < 0.66) s = s.slice(0, at) + s.slice(at + 1);
        else s = s.slice(0, at) + ch + s.slice(at + 1);
      }
      let nativeOk = true;
      let value: unknown;
      try { value = JSON.parse(s); } catch { nativeOk = false; }
      const res = scanJson(s, LOOSE);
      // A duplicate or forbidden name found before a later syntax error is reported first: fine.
      if (res !== null && res.code !== 'malformed-json') continue;
      const ourOk = res === null || (res.code !== 'malformed-json');
      assert.equal(ourOk, nativeOk, `${JSON.stringify(s)}: JSON.parse ${nativeOk ? 'accepts' : 'refuses'}, scan says ${res?.code ?? 'ok'} ${res?.detail ?? ''}`);
      if (res === null) {
        accepted++;
        const p = parseJsonLimited(s, LOOSE);
        assert.ok(p.ok);
        assert.deepEqual(p.value, value);
      }
    }
    assert.ok(accepted > 1000, `only ${accepted} mutants were valid JSON`);
  });
});
