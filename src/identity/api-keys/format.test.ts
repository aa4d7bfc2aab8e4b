// Key format, hashing and the constant-time look-up path.
import { describe, it, mock, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { crc32 } from 'node:zlib';
import { generateApiKey, hashApiKey, isWellFormedKey, keyHint, KEY_LENGTH, KEY_PATTERN, digestOfHash, checkPepper, randomBase62 } from './format.js';
import { importedKeyProblem, isImportableShape } from './format.js';
import { ApiKeyDirectory } from './directory.js';
import { configKeyRecord, hexOfHash, type KeyRecord } from './records.js';

const PEPPER = 'unit-test-pepper-0123456789abcdefghijkl';
const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Replaces the random character at `i` (0-based within the random part) and recomputes the checksum, so the result is well-formed. */
function withRandomChar(key: string, i: number): string {
  const body = key.slice(0, 36);
  const pos = 4 + i;
  const c = body[pos] === 'a' ? 'b' : 'a';
  const changed = body.slice(0, pos) + c + body.slice(pos + 1);
  let v = crc32(changed);
  let sum = '';
  for (let k = 0; k < 6; k++) { sum = ALPHABET[v % 62]! + sum; v = Math.floor(v / 62); }
  return changed + sum;
}

describe('API key format', () => {
  it('is pcl_ + 32 base62 + 6 checksum characters, found by the documented scanner pattern', () => {
    const k = generateApiKey();
    assert.equal(k.length, KEY_LENGTH);
    assert.equal(KEY_LENGTH, 42);
    assert.match(k, /^pcl_[0-9A-Za-z]{38}$/);
    assert.ok(isWellFormedKey(k));
    assert.ok(KEY_PATTERN.test(`config: token=${k} end`));
    assert.equal(keyHint(k), k.slice(-4));
    const many = new Set(Array.from({ length: 200 }, () => generateApiKey()));
    assert.equal(many.size, 200);
  });

  it('the checksum detects any single changed character', () => {
    const k = generateApiKey();
    for (let i = 4; i < k.length; i++) {
      const c = k[i] === 'x' ? 'y' : 'x';
      const bad = k.slice(0, i) + c + k.slice(i + 1);
      assert.equal(isWellFormedKey(bad), false, `change at ${i} not detected`);
    }
  });

  it('rejects garbage before hashing: prefix, length, alphabet', () => {
    const k = generateApiKey();
    for (const bad of ['', 'pcl_', k.slice(0, -1), `${k}A`, `xyz_${k.slice(4)}`, `${k.slice(0, 10)}-${k.slice(11)}`, `${k.slice(0, 10)}\u00e9${k.slice(11)}`, 'Bearer abc']) {
      assert.equal(isWellFormedKey(bad), false, JSON.stringify(bad));
    }
  });

  it('randomBase62 uses the whole alphabet (no modulo folding gaps)', () => {
    const seen = new Set(randomBase62(5000));
    assert.equal(seen.size, 62);
  });

  it('hash is hmac-sha256:hex of the key with the pepper; another pepper gives another hash', () => {
    const k = generateApiKey();
    const h = hashApiKey(PEPPER, k);
    assert.equal(h, `hmac-sha256:${crypto.createHmac('sha256', PEPPER).update(k).digest('hex')}`);
    assert.notEqual(hashApiKey(`${PEPPER}x`, k), h);
    assert.equal(digestOfHash(h)!.length, 32);
    assert.equal(digestOfHash('sha256:abc'), undefined);
  });

  it('a missing or short pepper is a clear error', () => {
    assert.throws(() => checkPepper(undefined, 'identity.pepper'), /API keys need a pepper: set identity.pepper/);
    assert.throws(() => checkPepper('short', 'X'), /at least 32 characters/);
    assert.equal(checkPepper(PEPPER, 'X'), PEPPER);
  });
});

describe('API key look-up', () => {
  afterEach(() => mock.restoreAll());

  const key = generateApiKey();
  const rec: KeyRecord = configKeyRecord('acme', { id: 'k1', hash: hashApiKey(PEPPER, key) });
  const dir = new ApiKeyDirectory(new Map([[hexOfHash(hashApiKey(PEPPER, key)), rec]]), undefined, PEPPER);

  it('a hit is confirmed with crypto.timingSafeEqual on two 32-byte digests', () => {
    const calls: [number, number][] = [];
    mock.method(crypto, 'timingSafeEqual', (a: Buffer, b: Buffer) => { calls.push([a.length, b.length]); return a.equals(b); });
    assert.equal(dir.lookup(key), rec);
    assert.deepEqual(calls, [[32, 32]]);
  });

  it('keys differing in the first or the last random character take the same path: one HMAC, one Map miss, no comparison', () => {
    const first = withRandomChar(key, 0);
    const last = withRandomChar(key, 31);
    assert.ok(isWellFormedKey(first) && isWellFormedKey(last));
    for (const k of [first, last]) {
      const hmac = mock.method(crypto, 'createHmac');
      const tse = mock.method(crypto, 'timingSafeEqual');
      assert.equal(dir.lookup(k), undefined);
      assert.equal(hmac.mock.callCount(), 1);
      assert.equal(tse.mock.callCount(), 0);
      mock.restoreAll();
    }
  });

  it('without a pepper nothing is found', () => {
    const none = new ApiKeyDirectory(new Map([[hexOfHash(hashApiKey(PEPPER, key)), rec]]), undefined, undefined);
    assert.equal(none.lookup(key), undefined);
  });
});

describe('imported keys (keys import)', () => {
  it('accepts random keys of other gateways: Kong hex, UUID, Tyk-style base64, 20 random base62', () => {
    const kong = crypto.randomBytes(16).toString('hex');
    const uuid = crypto.randomUUID();
    const tyk = crypto.randomBytes(36).toString('base64');
    for (const k of [kong, uuid, tyk, randomBase62(20), 'eyJvcmciOiI1ZTlkOTU0NGExZGNkNjAwMDFkMGVkMjAiLCJpZCI6ImFiYyJ9']) {
      assert.equal(importedKeyProblem(k), undefined, k);
      assert.ok(isImportableShape(k));
    }
  });

  it('refuses short, one-class, low-entropy and patterned keys, and says why', () => {
    const cases: [string, RegExp][] = [
      ['Ab3xY9kL2q', /too short: 10 characters, at least 20/],
      ['x'.repeat(300), /too long/],
      ['abc def ghi jkl mno pqr', /printable ASCII characters without spaces/],
      ['73920184756302918475', /only one character class/],
      ['qwertzuiopasdfghjklyxcvbnm', /only one character class/],
      ['aaaaaaaaaaaaaaaaaaaaaaa1', /bits per character/],
      ['abab1212abab1212abab1212', /bits per character/],
      ['abcdefghijklmnopqrstuvwxyz0123456789', /repeated or consecutive/],
    ];
    for (const [k, why] of cases) assert.match(importedKeyProblem(k) ?? 'accepted', why, k);
  });

  it('refuses no random key of the common shapes (1,000 of each)', () => {
    for (let i = 0; i < 1000; i++) {
      for (const k of [randomBase62(20), crypto.randomBytes(16).toString('hex'), crypto.randomUUID(), crypto.randomBytes(15).toString('base64url')]) {
        assert.equal(importedKeyProblem(k), undefined, k);
      }
    }
  });

  it('isImportableShape is only length and alphabet (the request path pre-check)', () => {
    assert.equal(isImportableShape('x'.repeat(19)), false);
    assert.equal(isImportableShape('x'.repeat(20)), true);
    assert.equal(isImportableShape(`${'x'.repeat(20)} `), false);
    assert.equal(isImportableShape('é'.repeat(20)), false);
  });
});
