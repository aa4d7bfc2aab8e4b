import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_BODY_LIMITS, decodeBody, decodeBodyAsync, isBodyError, resolveBodyLimits } from './index.js';
import type { BodyError, ParsedBody } from './index.js';

const L = DEFAULT_BODY_LIMITS;
const b = (s: string) => Buffer.from(s);

function sync(r: ReturnType<typeof decodeBody>): ParsedBody | BodyError {
  assert.ok(!(r instanceof Promise), 'expected a synchronous result');
  return r;
}
function parsed(r: ReturnType<typeof decodeBody>): ParsedBody {
  const v = sync(r);
  if (isBodyError(v)) assert.fail(`${v.status} ${v.code}: ${v.detail}`);
  return v;
}
function error(r: ParsedBody | BodyError | Promise<ParsedBody | BodyError>, status: number, code: string): BodyError {
  const v = sync(r as ReturnType<typeof decodeBody>);
  if (!isBodyError(v)) assert.fail(`expected ${status} ${code}, got kind ${v.kind}`);
  assert.equal(v.code, code, v.detail);
  assert.equal(v.status, status);
  return v;
}

describe('resolveBodyLimits', () => {
  it('fills defaults and uses the route body limit for maxFileBytes', () => {
    assert.deepEqual(resolveBodyLimits(), DEFAULT_BODY_LIMITS);
    assert.equal(DEFAULT_BODY_LIMITS.maxFileBytes, Infinity);
    const l = resolveBodyLimits({ maxDepth: 8 }, 1_000_000);
    assert.equal(l.maxDepth, 8);
    assert.equal(l.maxFileBytes, 1_000_000);
    assert.equal(l.maxKeys, 10_000);
    assert.equal(resolveBodyLimits({ maxFileBytes: 5 }, 1_000_000).maxFileBytes, 5);
    assert.ok(Object.isFrozen(l));
  });
});

describe('decodeBody: kinds', () => {
  it('JSON, including +json types, synchronously', () => {
    const v = parsed(decodeBody(b('{"a":[1,"x"]}'), 'application/json; charset=UTF-8', L));
    assert.equal(v.kind, 'json');
    assert.equal(v.contentType, 'application/json');
    assert.equal(v.charset, 'utf-8');
    assert.deepEqual(v.json, { a: [1, 'x'] });
    assert.ok(Object.isFrozen(v));
    assert.equal(parsed(decodeBody(b('{"type":"about:blank"}'), 'Application/Problem+JSON', L)).kind, 'json');
  });

  it('the view keeps the exact bytes received', () => {
    const raw = b('{ "a" : 1 }\n');
    assert.equal(parsed(decodeBody(raw, 'application/json', L)).raw, raw);
  });

  it('an empty body is kind none whatever the Content-Type, even a malformed one', () => {
    for (const ct of [undefined, 'application/json', 'multipart/form-data', 'text/plain; charset=latin1', 'not a type']) {
      const v = parsed(decodeBody(Buffer.alloc(0), ct, L));
      assert.equal(v.kind, 'none');
      assert.equal(v.json, undefined);
    }
    assert.equal(parsed(decodeBody(Buffer.alloc(0), 'application/json', L)).contentType, 'application/json');
  });

  it('whitespace-only JSON is malformed', () => {
    error(decodeBody(b(' \n'), 'application/json', L), 400, 'malformed-json');
  });

  it('urlencoded forms', () => {
    const v = parsed(decodeBody(b('a=1&b=%2B+'), 'application/x-www-form-urlencoded', L));
    assert.equal(v.kind, 'form');
    assert.deepEqual(v.fields, [{ name: 'a', value: '1' }, { name: 'b', value: '+ ' }]);
  });

  it('multipart returns a promise', async () => {
    const raw = b('--B\r\nContent-Disposition: form-data; name="a"\r\n\r\nv\r\n--B\r\nContent-Disposition: form-data; name="f"; filename="../x"\r\n\r\nfile\r\n--B--\r\n');
    const p = decodeBody(raw, 'multipart/form-data; boundary=B', L);
    assert.ok(p instanceof Promise);
    const v = await p;
    if (isBodyError(v)) assert.fail(v.detail);
    assert.equal(v.kind, 'multipart');
    assert.deepEqual(v.fields, [{ name: 'a', value: 'v' }]);
    assert.equal(v.files?.[0]?.filename, '../x');
    assert.equal(v.files?.[0]?.data.toString(), 'file');
  });

  it('text/* is decoded as UTF-8, keeping a BOM; other charsets keep the raw bytes only', () => {
    const v = parsed(decodeBody(b('\ufeffh\u00e9llo'), 'text/plain', L));
    assert.equal(v.kind, 'text');
    assert.equal(v.text, '\ufeffh\u00e9llo');
    const l1 = parsed(decodeBody(Buffer.from([0x68, 0xe9]), 'text/plain; charset=ISO-8859-1', L));
    assert.equal(l1.kind, 'text');
    assert.equal(l1.text, undefined);
    assert.equal(l1.charset, 'iso-8859-1');
    const bad = error(decodeBody(Buffer.from([0x68, 0xe9]), 'text/csv', L), 400, 'invalid-utf8');
    assert.equal(bad.position, 1);
  });

  it('anything else, and no Content-Type, is binary', () => {
    for (const ct of [undefined, 'application/octet-stream', 'application/xml', 'multipart/mixed; boundary=x', 'image/png']) {
      const v = parsed(decodeBody(Buffer.from([0xff, 0]), ct, L));
      assert.equal(v.kind, 'binary');
      assert.equal(v.json ?? v.text ?? v.fields, undefined);
    }
  });

  it('decodeBodyAsync always gives a promise', async () => {
    const p = decodeBodyAsync(b('1'), 'application/json', L);
    assert.ok(p instanceof Promise);
    assert.equal(((await p) as ParsedBody).json, 1);
  });
});

describe('decodeBody: errors and statuses', () => {
  it('a malformed Content-Type with a body is 400', () => {
    error(decodeBody(b('{}'), 'application/json; charset', L), 400, 'bad-content-type');
    error(decodeBody(b('x'), '', L), 400, 'bad-content-type');
  });

  it('a JSON or form charset other than UTF-8 is 415', () => {
    error(decodeBody(b('{}'), 'application/json; charset=utf-16', L), 415, 'unsupported-charset');
    error(decodeBody(b('a=1'), 'application/x-www-form-urlencoded; charset=iso-8859-1', L), 415, 'unsupported-charset');
  });

  it('malformed JSON positions are byte offsets into the body', () => {
    assert.equal(error(decodeBody(b('{"a":1,}'), 'application/json', L), 400, 'malformed-json').position, 7);
    // "é" is 2 bytes: the "}" is character 7 but byte 8
    assert.equal(error(decodeBody(b('{"\u00e9":1,}'), 'application/json', L), 400, 'malformed-json').position, 8);
    assert.equal(error(decodeBody(b('["\u00e9\u4e2d", x]'), 'application/json', L), 400, 'malformed-json').position, 10);
  });

  it('invalid UTF-8 in JSON is 400 with the byte offset; a BOM is refused', () => {
    assert.equal(error(decodeBody(Buffer.from([0x22, 0xc3, 0x28, 0x22]), 'application/json', L), 400, 'invalid-utf8').position, 1);
    assert.equal(error(decodeBody(Buffer.from([0xef, 0xbb, 0xbf, 0x31]), 'application/json', L), 400, 'malformed-json').position, 0);
  });

  it('JSON limits are 413, duplicate and forbidden names 400 with a pointer', () => {
    error(decodeBody(b('['.repeat(65) + ']'.repeat(65)), 'application/json', L), 413, 'json-too-deep');
    error(decodeBody(b('[' + '1,'.repeat(10_000) + '1]'), 'application/json', L), 413, 'json-array-too-long');
    error(decodeBody(b('["' + 'x'.repeat(1_048_577) + '"]'), 'application/json', L), 413, 'json-string-too-long');
    error(decodeBody(b(JSON.stringify(Object.fromEntries(Array.from({ length: 10_001 }, (_, i) => [`k${i}`, 0])))), 'application/json', L), 413, 'json-too-many-keys');
    assert.equal(error(decodeBody(b('{"a":{"x":1,"x":2}}'), 'application/json', L), 400, 'duplicate-json-key').pointer, '/a');
    assert.equal(error(decodeBody(b('{"__proto__":{"admin":true}}'), 'application/json', L), 400, 'forbidden-json-key').pointer, '/__proto__');
  });

  it('form errors', () => {
    error(decodeBody(b('a=%zz'), 'application/x-www-form-urlencoded', L), 400, 'malformed-form');
    error(decodeBody(b('a=1&b=2'), 'application/x-www-form-urlencoded', { ...L, maxFields: 1 }), 413, 'form-too-many-fields');
  });

  it('multipart errors keep their status', async () => {
    const v = await decodeBody(b('--B\r\nContent-Disposition: form-data; name="a"\r\n\r\nv'), 'multipart/form-data; boundary=B', L);
    assert.ok(isBodyError(v) && v.status === 400 && v.code === 'multipart-truncated');
    const w = await decodeBody(b('x'), 'multipart/form-data', L);
    assert.ok(isBodyError(w) && w.code === 'multipart-bad-boundary');
    const raw = b('--B\r\nContent-Disposition: form-data; name="f"; filename="a"\r\n\r\n0123456789\r\n--B--\r\n');
    const x = await decodeBody(raw, 'multipart/form-data; boundary=B', resolveBodyLimits({}, 5));
    assert.ok(isBodyError(x) && x.status === 413 && x.code === 'multipart-file-too-large');
  });

  it('errors are frozen and never thrown', () => {
    const e = error(decodeBody(b('{'), 'application/json', L), 400, 'malformed-json');
    assert.ok(Object.isFrozen(e));
  });
});
