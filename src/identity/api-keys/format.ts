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

// ---------------------------------------------------------------- imported keys
//
// Keys migrated from another gateway (Kong, Tyk, ...) keep their own format. The gateway looks them up by
// the HMAC of the whole key, like its own keys; only the cheap pre-check differs (see isImportableShape).
// `keys import` refuses keys that are too weak to stay in service:
//   - 20 to 256 characters, printable ASCII without spaces;
//   - at least 2 character classes (lower-case, upper-case, digits, other): hex keys (Kong's default,
//     digits + a-f) pass, all-digit or all-letter keys do not;
//   - Shannon entropy of its characters at least 2.5 bits per character (a random 20-character base62 key
//     has about 4, a random 32-character hex key about 3.7 and rarely below 3; aaaa…1 or abab1212… have less than 2);
//   - no more than 60% of neighbouring characters repeated or consecutive (aaaa, abcd, 1234); a random
//     hex key passes with a probability of 1 - 2e-7.
// With 20 characters from at least 36 symbols (two classes), even the weakest accepted key would be
// about 100 bits if random. The rule cannot prove a key random; it refuses the keys that are certainly not.

export const IMPORT_MIN_LENGTH = 20;
export const IMPORT_MAX_LENGTH = 256;
const IMPORT_MIN_BITS_PER_CHAR = 2.5;

/** Length and alphabet of an importable key; no allocation (runs on the request path). */
export function isImportableShape(s: string): boolean {
  if (s.length < IMPORT_MIN_LENGTH || s.length > IMPORT_MAX_LENGTH) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

/** Why a key may not be imported, or undefined when it may. Never includes the key. */
export function importedKeyProblem(key: string): string | undefined {
  if (key.length < IMPORT_MIN_LENGTH) return `too short: ${key.length} characters, at least ${IMPORT_MIN_LENGTH} are needed`;
  if (key.length > IMPORT_MAX_LENGTH) return `too long: ${key.length} characters, at most ${IMPORT_MAX_LENGTH}`;
  if (!isImportableShape(key)) return 'only printable ASCII characters without spaces are allowed';
  const classes = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^A-Za-z0-9]/].filter((r) => r.test(key)).length;
  if (classes < 2) return 'only one character class (e.g. only digits or only letters): not a random key';
  const counts = new Map<string, number>();
  for (const ch of key) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let perChar = 0;
  for (const n of counts.values()) perChar -= (n / key.length) * Math.log2(n / key.length);
  if (perChar < IMPORT_MIN_BITS_PER_CHAR) return `too little entropy: ${perChar.toFixed(1)} bits per character, at least ${IMPORT_MIN_BITS_PER_CHAR} are needed`;
  let runs = 0;
  for (let i = 1; i < key.length; i++) if (Math.abs(key.charCodeAt(i) - key.charCodeAt(i - 1)) <= 1) runs++;
  if (runs * 5 > (key.length - 1) * 3) return 'too many repeated or consecutive characters (aaaa, abcd, 1234): not a random key';
  return undefined;
}

/** Rejects a missing or short pepper with a message that says where it comes from. */
export function checkPepper(pepper: string | undefined, where: string): string {
  if (pepper === undefined || pepper === '') throw new Error(`API keys need a pepper: set ${where}`);
  if (pepper.length < MIN_PEPPER_LENGTH) throw new Error(`the API key pepper (${where}) must be at least ${MIN_PEPPER_LENGTH} characters`);
  return pepper;
}
