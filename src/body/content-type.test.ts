import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isJsonMediaType, isUtf8Charset, parseContentType } from './content-type.js';

function ok(h: string) {
  const r = parseContentType(h);
  if (!r.ok) assert.fail(`${JSON.stringify(h)} refused: ${r.detail}`);
  return r.value;
}

describe('parseContentType', () => {
  it('parses type, subtype and parameters, lower-casing names but not values', () => {
    const v = ok('Multipart/Form-Data; Boundary=AbC123; charset="UTF-8"');
    assert.equal(v.mediaType, 'multipart/form-data');
    assert.equal(v.type, 'multipart');
    assert.equal(v.subtype, 'form-data');
    assert.deepEqual({ ...v.params }, { boundary: 'AbC123', charset: 'UTF-8' });
    assert.equal(Object.getPrototypeOf(v.params), null);
  });

  it('accepts OWS around the value and the semicolons, and empty parameters', () => {
    assert.equal(ok('  application/json  ').mediaType, 'application/json');
    assert.deepEqual({ ...ok('text/plain ;\tcharset=utf-8 ; ').params }, { charset: 'utf-8' });
    assert.deepEqual({ ...ok('text/plain;;charset=utf-8;;').params }, { charset: 'utf-8' });
    assert.deepEqual({ ...ok('text/plain;').params }, {});
  });

  it('unquotes quoted-strings with quoted-pairs and keeps their spaces', () => {
    assert.equal(ok('multipart/form-data; boundary="a b\\"c\\\\d"').params['boundary'], 'a b"c\\d');
    assert.equal(ok('a/b; x=""').params['x'], '');
    assert.equal(ok('a/b; x="semi;colon"').params['x'], 'semi;colon');
  });

  const bad: [string, string][] = [
    ['', 'empty'],
    ['   ', 'blank'],
    ['application', 'no slash'],
    ['application/', 'empty subtype'],
    ['/json', 'empty type'],
    ['application/json/x', 'extra slash'],
    ['appli cation/json', 'space inside the type'],
    ['application/json; charset', 'parameter without ='],
    ['application/json; charset=', 'empty value'],
    ['application/json; =utf-8', 'empty name'],
    ['application/json; charset="utf-8', 'unterminated quoted-string'],
    ['application/json; charset=utf 8', 'space in a token value'],
    ['application/json charset=utf-8', 'missing semicolon'],
    ['application/json; charset=utf-8; CHARSET=latin1', 'duplicate parameter, any case'],
    ['application/json; a="x\u0001"', 'control character in a quoted-string'],
    ['application/json; a=b\u0000', 'NUL'],
    ['application/jsön', 'non-token character'],
    ['text/plain; a="\u0100"', 'character above U+00FF'],
    ['text/plain; a="x\\', 'dangling backslash'],
  ];
  for (const [h, why] of bad) {
    it(`refuses ${JSON.stringify(h)} (${why})`, () => {
      const r = parseContentType(h);
      assert.equal(r.ok, false);
      if (!r.ok) {
        assert.equal(typeof r.detail, 'string');
        assert.ok(r.position >= 0 && r.position <= h.length);
      }
    });
  }

  it('never throws on arbitrary input', () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const alphabet = 'ab/;= "\\\t,\u00e9\u0001*';
    for (let k = 0; k < 2000; k++) {
      let s = '';
      const len = Math.floor(rnd() * 20);
      for (let i = 0; i < len; i++) s += alphabet[Math.floor(rnd() * alphabet.length)];
      const r = parseContentType(s);
      assert.equal(typeof r.ok, 'boolean');
    }
  });
});

describe('isJsonMediaType / isUtf8Charset', () => {
  it('recognises application/json and +json suffixes only', () => {
    assert.ok(isJsonMediaType('application/json'));
    assert.ok(isJsonMediaType('application/problem+json'));
    assert.ok(isJsonMediaType('application/merge-patch+json'));
    assert.ok(!isJsonMediaType('text/json'));
    assert.ok(!isJsonMediaType('application/jsonx'));
    assert.ok(!isJsonMediaType('application/x-ndjson'));
  });
  it('accepts absent and UTF-8 charsets in any case', () => {
    assert.ok(isUtf8Charset(undefined));
    assert.ok(isUtf8Charset('UTF-8'));
    assert.ok(isUtf8Charset('utf8'));
    assert.ok(!isUtf8Charset('iso-8859-1'));
    assert.ok(!isUtf8Charset('utf-16'));
  });
});
