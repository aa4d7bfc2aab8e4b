// API key format and hashing.
//
// A key is `pcl_` + 32 base62 random characters + 6 base62 characters of the CRC32 of everything before
// them (42 characters in all), the scheme GitHub uses for its tokens: the fixed prefix and the checksum
// let secret scanners find leaked keys with almost no false positives, and let the gateway throw away
// typos and garbage before it spends an HMAC on them. Scanner pattern: `\bpcl_[0-9A-Za-z]{38}\b`.
//
// Keys are never stored: only `hmac-sha256:` + hex(HMAC-SHA256(pepper, key)). The pepper is a server-side
// secret, so a leaked database (or config file) does not let anyone check guesses offline.
import crypto from 'node:crypto';
import { crc32 } from 'node:zlib';

export const KEY_PREFIX = 'pcl_';
const RANDOM_CHARS = 32;
const CHECKSUM_CHARS = 6;
export const KEY_LENGTH = KEY_PREFIX.length + RANDOM_CHARS + CHECKSUM_CHARS;
/** For secret scanners and log scrubbers. */
export const KEY_PATTERN = /\bpcl_[0-9A-Za-z]{38}\b/;
export const HASH_PREFIX = 'hmac-sha256:';
export const HASH_PATTERN = /^hmac-sha256:[0-9a-f]{64}$/;
/** identity.pepper's minimum (the schema enforces it for the config; the CLI checks its env variable). */
export const MIN_PEPPER_LENGTH = 32;

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** `n` base62 characters, uniformly distributed: bytes ≥ 248 (= 4 × 62) are discarded, not folded. */
export function randomBase62(n: number): string {
  let out = '';
  while (out.length < n) {
    const bytes = crypto.randomBytes(n + 8);
    for (let i = 0; i < bytes.length && out.length < n; i++) {
      const b = bytes[i]!;
      if (b < 248) out += ALPHABET[b % 62];
    }
  }
  return out;
}

function checksum(body: string): string {
  let v = crc32(body);
  let s = '';
  for (let i = 0; i < CHECKSUM_CHARS; i++) {
    s = ALPHABET[v % 62]! + s;
    v = Math.floor(v / 62);
  }
  return s; // 62^6 > 2^32: six characters hold any CRC32, zero-padded
}

/** A fresh key. Show it once; keep only hashApiKey(pepper, key). */
export function generateApiKey(): string {
  const body = KEY_PREFIX + randomBase62(RANDOM_CHARS);
  return body + checksum(body);
}

/** Value of a base62 character, or -1. */
function base62Value(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 90) return c - 55;
  if (c >= 97 && c <= 122) return c - 61;
  return -1;
}

const SPLIT = KEY_LENGTH - CHECKSUM_CHARS;

/** Prefix, length, alphabet and checksum. Cheap (no string building); runs before any hashing so garbage costs no HMAC. */
export function isWellFormedKey(s: string): boolean {
  if (s.length !== KEY_LENGTH || !s.startsWith(KEY_PREFIX)) return false;
  for (let i = KEY_PREFIX.length; i < SPLIT; i++) if (base62Value(s.charCodeAt(i)) < 0) return false;
  let sum = 0;
  for (let i = SPLIT; i < KEY_LENGTH; i++) {
    const v = base62Value(s.charCodeAt(i));
    if (v < 0) return false;
    sum = sum * 62 + v;
  }
  return crc32(s.slice(0, SPLIT)) === sum;
}

/** Last four characters: enough for a person to tell keys apart, useless to an attacker. */
export function keyHint(key: string): string {
  return key.slice(-4);
}

/** The stored form of a key: `hmac-sha256:<64 hex>`. */
export function hashApiKey(pepper: string, key: string): string {
  return HASH_PREFIX + crypto.createHmac('sha256', pepper).update(key).digest('hex');
}

/** The 32-byte digest behind a stored hash string (validated by HASH_PATTERN first). */
export function digestOfHash(hash: string): Buffer | undefined {
  if (!HASH_PATTERN.test(hash)) return undefined;
  return Buffer.from(hash.slice(HASH_PREFIX.length), 'hex');
}

/** Rejects a missing or short pepper with a message that says where it comes from. */
export function checkPepper(pepper: string | undefined, where: string): string {
  if (pepper === undefined || pepper === '') throw new Error(`API keys need a pepper: set ${where}`);
  if (pepper.length < MIN_PEPPER_LENGTH) throw new Error(`the API key pepper (${where}) must be at least ${MIN_PEPPER_LENGTH} characters`);
  return pepper;
}
