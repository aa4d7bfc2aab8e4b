import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseUrlencoded } from './form.js';
import type { FormLimits, FormResult } from './form.js';

const L: FormLimits = { maxFields: 1000, maxFieldBytes: 1_048_576 };

function fields(body: string | Buffer, limits = L): [string, string][] {
  const r = parseUrlencoded(typeof body === 'string' ? Buffer.from(body) : body, limits);
  if (!r.ok) assert.fail(`${r.code}: ${r.detail}`);
  return r.fields.map((f) => [f.name, f.value]);
}

function refused(r: FormResult, code: string) {
  if (r.ok) assert.fail(`expected ${code}`);
  assert.equal(r.code, code, r.detail);
  return r;
}

describe('parseUrlencoded', () => {
  it('keeps order and duplicates', () => {
    assert.deepEqual(fields('b=2&a=1&b=3'), [['b', '2'], ['a', '1'], ['b', '3']]);
  });

  it('decodes + as a space and %2B as a plus, in names and values', () => {
    assert.deepEqual(fields('a+b=c+d&%2B=%2b%20'), [['a b', 'c d'], ['+', '+ ']]);
  });

  it('splits on the first =, and a field without = has an empty value', () => {
    assert.deepEqual(fields('a==b&c&d=&=e'), [['a', '=b'], ['c', ''], ['d', ''], ['', 'e']]);
  });

  it('skips empty pieces like URLSearchParams', () => {
    assert.deepEqual(fields('&a=1&&b=2&'), [['a', '1'], ['b', '2']]);
    assert.deepEqual(fields('&&&'), []);
  });

  it('matches URLSearchParams on well-formed input', () => {
    const bodies = ['x=%E2%82%AC&y=%C3%A9t%C3%A9', 'q=a%26b%3Dc&r=%25', 'k=v;w=z', 'caf\u00e9=cr\u00e8me'];
    for (const b of bodies) assert.deepEqual(fields(b), [...new URLSearchParams(b)], b);
  });

  it('refuses a % not followed by two hex digits, with the byte offset', () => {
    for (const [b, at] of [['a=%', 2], ['a=%4', 2], ['a=%zz', 2], ['ok=1&b%=1', 6], ['\u00e9=%G1', 3], ['a=1%2', 3]] as const) {
      assert.equal(refused(parseUrlencoded(Buffer.from(b), L), 'malformed-form').position, at, b);
    }
  });

  it('refuses percent-encoded bytes that are not UTF-8', () => {
    refused(parseUrlencoded(Buffer.from('a=%FF'), L), 'invalid-utf8');
    refused(parseUrlencoded(Buffer.from('a=%C3'), L), 'invalid-utf8');
    refused(parseUrlencoded(Buffer.from('%ED%A0%80=x'), L), 'invalid-utf8'); // encoded surrogate
    assert.deepEqual(fields('a=%C3%A9'), [['a', '\u00e9']]);
  });

  it('refuses raw bytes that are not UTF-8', () => {
    assert.equal(refused(parseUrlencoded(Buffer.from([0x61, 0x3d, 0xff]), L), 'invalid-utf8').position, 2);
  });

  it('maxFields: just under and just over', () => {
    const body = Array.from({ length: 5 }, (_, i) => `f${i}=${i}`).join('&');
    assert.equal(fields(body, { ...L, maxFields: 5 }).length, 5);
    refused(parseUrlencoded(Buffer.from(body), { ...L, maxFields: 4 }), 'form-too-many-fields');
    // empty pieces do not count
    assert.equal(fields('&&a=1&&', { ...L, maxFields: 1 }).length, 1);
  });

  it('maxFieldBytes: measured on decoded UTF-8 bytes of names and values', () => {
    const lim = { ...L, maxFieldBytes: 4 };
    assert.deepEqual(fields('abcd=%C3%A9%C3%A9', lim), [['abcd', '\u00e9\u00e9']]);
    refused(parseUrlencoded(Buffer.from('a=%C3%A9%C3%A9x'), lim), 'form-field-too-large');
    refused(parseUrlencoded(Buffer.from('abcde=1'), lim), 'form-field-too-large');
    assert.deepEqual(fields('a=%41%41%41%41', lim), [['a', 'AAAA']]); // 12 encoded bytes, 4 decoded
  });

  it('returns frozen fields', () => {
    const r = parseUrlencoded(Buffer.from('a=1'), L);
    assert.ok(r.ok && Object.isFrozen(r.fields) && Object.isFrozen(r.fields[0]));
  });
});
