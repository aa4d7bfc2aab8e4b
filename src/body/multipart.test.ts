import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isValidBoundary, parseMultipart } from './multipart.js';
import type { MultipartLimits, MultipartResult } from './multipart.js';

const L: MultipartLimits = { maxParts: 100, maxFields: 1000, maxFieldBytes: 1_048_576, maxFiles: 10, maxFileBytes: Infinity };
const B = 'xYz-0123';
const CT = `multipart/form-data; boundary=${B}`;

type Part = { name?: string; filename?: string; type?: string; headers?: string[]; body: string | Buffer };
function build(parts: Part[], boundary = B, close = true): Buffer {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    let disp = 'Content-Disposition: form-data';
    if (p.name !== undefined) disp += `; name="${p.name}"`;
    if (p.filename !== undefined) disp += `; filename="${p.filename}"`;
    const head = [`--${boundary}`, disp, ...(p.type ? [`Content-Type: ${p.type}`] : []), ...(p.headers ?? []), '', ''].join('\r\n');
    chunks.push(Buffer.from(head, 'utf8'), typeof p.body === 'string' ? Buffer.from(p.body) : p.body, Buffer.from('\r\n'));
  }
  if (close) chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

async function ok(raw: Buffer, limits = L, ct = CT) {
  const r = await parseMultipart(raw, ct, /boundary="?([^";]+)/.exec(ct)?.[1], limits);
  if (!r.ok) assert.fail(`${r.code}: ${r.detail}`);
  return r;
}

async function refused(p: Promise<MultipartResult>, status: number, code: string) {
  const r = await p;
  if (r.ok) assert.fail(`expected ${code}`);
  assert.equal(r.code, code, r.detail);
  assert.equal(r.status, status);
  return r;
}

const parse = (raw: Buffer, limits = L) => parseMultipart(raw, CT, B, limits);

describe('parseMultipart', () => {
  it('returns fields and files in order, duplicates kept', async () => {
    const r = await ok(build([
      { name: 'a', body: '1' },
      { name: 'up', filename: 'x.bin', type: 'Application/Octet-Stream', body: Buffer.from([0, 1, 2, 255]) },
      { name: 'a', body: 'caf\u00e9' },
      { name: 'empty', body: '' },
      { name: 'up', filename: '', type: 'application/octet-stream', body: '' },
    ]));
    assert.deepEqual(r.fields.map((f) => [f.name, f.value]), [['a', '1'], ['a', 'caf\u00e9'], ['empty', '']]);
    assert.equal(r.files.length, 2);
    assert.deepEqual({ ...r.files[0], data: [...r.files[0]!.data] }, { field: 'up', filename: 'x.bin', contentType: 'application/octet-stream', size: 4, data: [0, 1, 2, 255] });
    assert.equal(r.files[1]!.filename, '');
    assert.equal(r.files[1]!.size, 0);
    assert.ok(Object.isFrozen(r.fields) && Object.isFrozen(r.files) && Object.isFrozen(r.files[0]));
  });

  it('keeps file names verbatim, traversal included', async () => {
    const names = ['../../etc/passwd', '..\\..\\windows\\win.ini', '/abs/path', 'C:\\x.txt', 'a\u00e9\u4e2d.txt', '%2e%2e%2fx', 'nul\u0000?'];
    const r = await ok(build(names.map((filename, i) => ({ name: `f${i}`, filename, body: 'x' }))));
    assert.deepEqual(r.files.map((f) => f.filename), names);
  });

  it('a part without a filename is a field, even with a binary content type', async () => {
    const r = await ok(build([{ name: 'j', type: 'application/octet-stream', body: '{"x":1}' }]));
    assert.deepEqual(r.fields, [{ name: 'j', value: '{"x":1}' }]);
    assert.equal(r.files.length, 0);
  });

  it('ignores preamble and epilogue', async () => {
    const raw = Buffer.concat([Buffer.from('preamble text\r\n'), build([{ name: 'a', body: 'v' }]), Buffer.from('epilogue')]);
    assert.deepEqual((await ok(raw)).fields, [{ name: 'a', value: 'v' }]);
  });

  it('handles a quoted boundary with allowed special characters', async () => {
    const b = "a'()+_,-./:=? b";
    assert.ok(isValidBoundary(b));
    const raw = build([{ name: 'a', body: 'v' }], b);
    const r = await parseMultipart(raw, `multipart/form-data; boundary="${b}"`, b, L);
    assert.ok(r.ok, r.ok ? '' : r.detail);
  });

  it('keeps a 5 MB file within the limits, byte for byte', async () => {
    const data = Buffer.alloc(5 * 1024 * 1024);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31 + (i >> 8)) & 0xff;
    // include something that looks like a boundary without the leading CRLF
    Buffer.from(`--${B}`).copy(data, 1000);
    const t0 = performance.now();
    const r = await ok(build([{ name: 'f', body: 'before' }, { name: 'big', filename: 'big.bin', body: data }, { name: 'g', body: 'after' }]), { ...L, maxFileBytes: data.length });
    const ms = performance.now() - t0;
    assert.equal(r.files[0]!.size, data.length);
    assert.ok(r.files[0]!.data.equals(data));
    assert.deepEqual(r.fields.map((f) => f.name), ['f', 'g']);
    assert.ok(ms < 2000, `${ms} ms`);
  });
});

describe('parseMultipart: malformed bodies', () => {
  it('refuses a missing or invalid boundary', async () => {
    const raw = build([{ name: 'a', body: 'v' }]);
    await refused(parseMultipart(raw, 'multipart/form-data', undefined, L), 400, 'multipart-bad-boundary');
    for (const b of ['', 'x'.repeat(71), 'ends with space ', 'bad\u00e9', 'semi;colon', 'quote"d']) {
      assert.equal(isValidBoundary(b), false, b);
      await refused(parseMultipart(raw, `multipart/form-data; boundary="${b}"`, b, L), 400, 'multipart-bad-boundary');
    }
    assert.ok(isValidBoundary('x'.repeat(70)));
  });

  it('refuses a body that uses another boundary than the declared one', async () => {
    await refused(parse(build([{ name: 'a', body: 'v' }], 'other')), 400, 'multipart-truncated');
  });

  it('refuses a truncated body, wherever it is cut', async () => {
    const raw = build([{ name: 'a', body: 'value' }, { name: 'f', filename: 'x', body: 'file content' }]);
    for (const cut of [0, 5, 20, 60, 80, raw.length - 10, raw.length - 4]) {
      const r = await parse(raw.subarray(0, cut));
      assert.equal(r.ok, false, `cut at ${cut}`);
      if (!r.ok) assert.equal(r.status, 400, `cut at ${cut}: ${r.code}`);
    }
    await refused(parse(build([{ name: 'a', body: 'v' }], B, false)), 400, 'multipart-truncated');
  });

  it('refuses a part without a name', async () => {
    await refused(parse(build([{ body: 'v' }])), 400, 'multipart-malformed');
  });

  it('refuses a Content-Transfer-Encoding other than 7bit, 8bit or binary', async () => {
    await refused(parse(build([{ name: 'a', headers: ['Content-Transfer-Encoding: base64'], body: 'dg==' }])), 400, 'multipart-malformed');
    await ok(build([{ name: 'a', headers: ['Content-Transfer-Encoding: 8bit'], body: 'v' }]));
  });

  it('refuses a field value that is not UTF-8', async () => {
    await refused(parse(build([{ name: 'a', body: Buffer.from([0x61, 0xff]) }])), 400, 'invalid-utf8');
    // files may hold any bytes
    await ok(build([{ name: 'a', filename: 'f', body: Buffer.from([0xff]) }]));
  });
});

describe('parseMultipart: limits, just under and just over', () => {
  const n = (k: number, f: (i: number) => Part) => Array.from({ length: k }, (_, i) => f(i));
  it('maxParts', async () => {
    const lim = { ...L, maxParts: 3 };
    await ok(build(n(3, (i) => ({ name: `a${i}`, body: 'v' }))), lim);
    await refused(parse(build(n(4, (i) => ({ name: `a${i}`, body: 'v' }))), lim), 413, 'multipart-too-many-parts');
  });
  it('maxFields', async () => {
    const lim = { ...L, maxFields: 2 };
    await ok(build([...n(2, (i) => ({ name: `a${i}`, body: 'v' })), { name: 'f', filename: 'f', body: 'x' }]), lim);
    await refused(parse(build(n(3, (i) => ({ name: `a${i}`, body: 'v' }))), lim), 413, 'multipart-too-many-fields');
  });
  it('maxFiles', async () => {
    const lim = { ...L, maxFiles: 2 };
    await ok(build([...n(2, (i) => ({ name: `f${i}`, filename: 'x', body: 'v' })), { name: 'a', body: 'x' }]), lim);
    await refused(parse(build(n(3, (i) => ({ name: `f${i}`, filename: 'x', body: 'v' }))), lim), 413, 'multipart-too-many-files');
  });
  it('maxFieldBytes', async () => {
    const lim = { ...L, maxFieldBytes: 4 };
    await ok(build([{ name: 'a', body: 'caf\u00e9'.slice(0, 3) + 'e' }, { name: 'f', filename: 'x', body: 'longer than four' }]), lim);
    await refused(parse(build([{ name: 'a', body: 'caf\u00e9' }]), lim), 413, 'multipart-field-too-large'); // 5 bytes
  });
  it('maxFileBytes', async () => {
    const lim = { ...L, maxFileBytes: 1000 };
    await ok(build([{ name: 'f', filename: 'x', body: Buffer.alloc(1000, 1) }, { name: 'a', body: 'x'.repeat(2000) }]), lim);
    const r = await refused(parse(build([{ name: 'f', filename: 'x.bin', body: Buffer.alloc(1001, 1) }]), lim), 413, 'multipart-file-too-large');
    assert.match(r.detail, /x\.bin/);
    await refused(parse(build([{ name: 'f', filename: 'x', body: Buffer.alloc(300_000, 1) }]), lim), 413, 'multipart-file-too-large');
  });
});
