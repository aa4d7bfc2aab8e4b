import { isUtf8 } from 'node:buffer';

// Limited JSON parsing: one iterative structural scan that validates the RFC 8259 grammar and the
// limits, then the native JSON.parse for the value.
//
// The scan runs before anything is allocated for the document, keeps its own explicit stack (no
// recursion, so a 100,000-deep `[[[[…` costs one array slot per level until maxDepth stops it) and
// checks, in one pass:
//   - syntax, with the position of the first error (a UTF-16 code-unit index into the text, the
//     same unit as JSON.parse's "at position N");
//   - nesting depth (the top-level container is depth 1);
//   - the total number of object members across the document;
//   - the length of every string, key or value, in UTF-16 code units after unescaping (what
//     `.length` of the parsed string would be);
//   - the number of elements of every array;
//   - duplicate member names in one object, compared after unescaping ("a" and "\u0061" are the same
//     name): backends disagree on which one wins (first, last, error), so we refuse them all;
//   - prototype-pollution names: a member named `__proto__` anywhere, and a member named `prototype`
//     in an object that is the value of a member named `constructor`.
// A leading byte order mark (U+FEFF) is refused as malformed: RFC 8259 forbids senders to add one and
// parsers disagree (JSON.parse rejects it, others skip it).

export interface JsonLimits {
  readonly maxDepth: number;
  readonly maxKeys: number;
  readonly maxStringLength: number;
  readonly maxArrayLength: number;
}

export type JsonErrorCode =
  | 'malformed-json'
  | 'invalid-utf8'
  | 'json-too-deep'
  | 'json-too-many-keys'
  | 'json-string-too-long'
  | 'json-array-too-long'
  | 'duplicate-json-key'
  | 'forbidden-json-key';

export interface JsonError {
  readonly ok: false;
  readonly code: JsonErrorCode;
  readonly detail: string;
  /** UTF-16 code-unit index into the text (for a Buffer input given as invalid UTF-8: byte offset). */
  readonly position?: number;
  /** RFC 6901 JSON Pointer: for duplicate keys the object, for forbidden keys the member. */
  readonly pointer?: string;
}

export type JsonResult = { readonly ok: true; readonly value: unknown } | JsonError;

const ARRAY = 0;
const OBJECT = 1;

// Parser states.
const S_VALUE = 0; // a value is required
const S_VALUE_OR_CLOSE = 1; // just after '[': a value or ']'
const S_AFTER_VALUE = 2; // after a complete value: ',' or a closing bracket (or the end at depth 0)
const S_KEY = 3; // after ',' in an object: a member name is required
const S_KEY_OR_CLOSE = 4; // just after '{': a member name or '}'

const SMALL_KEY_SET = 16;

function escapePointerToken(t: string): string {
  return t.replace(/~/g, '~0').replace(/\//g, '~1');
}

function describeChar(s: string, i: number): string {
  if (i >= s.length) return 'end of input';
  const c = s.charCodeAt(i);
  if (c < 0x20 || c === 0x7f) return `character U+${c.toString(16).padStart(4, '0').toUpperCase()}`;
  return `character ${JSON.stringify(s[i])}`;
}

function isDigitAt(s: string, i: number): boolean {
  const c = s.charCodeAt(i); // NaN past the end
  return c >= 0x30 && c <= 0x39;
}

function skipDigits(s: string, i: number): number {
  while (isDigitAt(s, i)) i++;
  return i;
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

function jerr(code: JsonErrorCode, detail: string, position: number, pointer?: string): JsonError {
  return pointer === undefined ? { ok: false, code, detail, position } : { ok: false, code, detail, position, pointer };
}

function unexpected(s: string, at: number, expected: string): JsonError {
  return jerr('malformed-json', `unexpected ${describeChar(s, at)} at position ${at}; expected ${expected}`, at);
}

/** JSON Pointer of the container at stack level `level` (1 = top-level container). */
function pointerOf(kinds: readonly number[], counts: readonly number[], currentKey: readonly string[], level: number): string {
  let p = '';
  for (let d = 0; d < level - 1; d++) {
    p += '/' + (kinds[d] === OBJECT ? escapePointerToken(currentKey[d] ?? '') : String((counts[d] ?? 1) - 1));
  }
  return p;
}

// Results of the last scanString (module state: the scan is synchronous and never re-entered).
let lastStringHasEscape = false;
let lastStringLength = 0;

/**
 * Scans the string whose opening quote is at `start`. Returns the index after the closing quote, or
 * a JsonError. Sets lastStringHasEscape and lastStringLength (UTF-16 units after unescaping).
 */
function scanString(s: string, start: number): number | JsonError {
  const n = s.length;
  let j = start + 1;
  let len = 0;
  let escaped = false;
  for (;;) {
    // Plain run: anything but '"', '\' and control characters.
    let c = 0;
    const runStart = j;
    while (j < n) {
      c = s.charCodeAt(j);
      if (c === 0x22 || c === 0x5c || c < 0x20) break;
      j++;
    }
    len += j - runStart;
    if (j >= n) return jerr('malformed-json', `unterminated string starting at position ${start}`, n);
    if (c === 0x22) break;
    if (c === 0x5c) {
      escaped = true;
      const e = j + 1 < n ? s.charCodeAt(j + 1) : -1;
      if (e === 0x75 /* u */) {
        for (let h = j + 2; h < j + 6; h++) {
          if (h >= n) return jerr('malformed-json', `unterminated string starting at position ${start}`, n);
          if (!isHex(s.charCodeAt(h))) return jerr('malformed-json', `bad \\u escape: expected a hex digit at position ${h}`, h);
        }
        j += 6;
      } else if (e === 0x22 || e === 0x5c || e === 0x2f || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) {
        j += 2;
      } else {
        if (e < 0) return jerr('malformed-json', `unterminated string starting at position ${start}`, n);
        return jerr('malformed-json', `bad escape sequence at position ${j}`, j);
      }
      len++;
      continue;
    }
    return jerr('malformed-json', `unescaped control character U+${c.toString(16).padStart(4, '0').toUpperCase()} in a string at position ${j}`, j);
  }
  lastStringHasEscape = escaped;
  lastStringLength = len;
  return j + 1;
}

/**
 * Validates `s` as one JSON text under `limits`. Returns null when it is well-formed and within the
 * limits (JSON.parse then cannot fail on it), else the first problem found.
 */
export function scanJson(s: string, limits: JsonLimits): JsonError | null {
  const n = s.length;
  const { maxDepth, maxKeys, maxStringLength, maxArrayLength } = limits;
  // The explicit stack, as parallel arrays indexed by depth - 1.
  const kinds: number[] = [];
  const counts: number[] = []; // array: elements so far; object: members so far
  const keys: (string[] | Set<string>)[] = []; // object: member names so far (unused for arrays)
  const currentKey: string[] = []; // object: name of the member being parsed (for pointers)
  const ctorValue: boolean[] = []; // object: is the value of a member named "constructor"
  let depth = 0;
  let totalKeys = 0;
  let state = S_VALUE;
  let valueOfCtor = false; // the next value is the value of a member named "constructor"
  let i = 0;

  for (;;) {
    // Skip insignificant whitespace: space, tab, line feed, carriage return.
    let c = 0;
    while (i < n) {
      c = s.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
    if (i >= n) break;

    if (state === S_AFTER_VALUE) {
      if (depth === 0) return jerr('malformed-json', `unexpected ${describeChar(s, i)} after the JSON value at position ${i}`, i);
      const top = depth - 1;
      if (c === 0x2c /* , */) {
        state = kinds[top] === OBJECT ? S_KEY : S_VALUE;
        i++;
        continue;
      }
      if ((c === 0x5d /* ] */ && kinds[top] === ARRAY) || (c === 0x7d /* } */ && kinds[top] === OBJECT)) {
        depth--;
        kinds.pop(); counts.pop(); keys.pop(); currentKey.pop(); ctorValue.pop();
        i++;
        continue; // state stays S_AFTER_VALUE: the container is a complete value
      }
      return unexpected(s, i, kinds[top] === OBJECT ? '"," or "}"' : '"," or "]"');
    }

    if (state === S_KEY || state === S_KEY_OR_CLOSE) {
      const top = depth - 1;
      if (c === 0x7d && state === S_KEY_OR_CLOSE) {
        depth--;
        kinds.pop(); counts.pop(); keys.pop(); currentKey.pop(); ctorValue.pop();
        state = S_AFTER_VALUE;
        i++;
        continue;
      }
      if (c !== 0x22) return unexpected(s, i, state === S_KEY ? 'a member name' : 'a member name or "}"');
      const end = scanString(s, i);
      if (typeof end !== 'number') return end;
      if (lastStringLength > maxStringLength) {
        return jerr('json-string-too-long', `a member name at position ${i} is ${lastStringLength} characters long; the limit is ${maxStringLength}`, i, pointerOf(kinds, counts, currentKey, depth));
      }
      if (++totalKeys > maxKeys) {
        return jerr('json-too-many-keys', `more than ${maxKeys} object members in the document (at position ${i})`, i, pointerOf(kinds, counts, currentKey, depth));
      }
      const key = lastStringHasEscape ? (JSON.parse(s.slice(i, end)) as string) : s.slice(i + 1, end - 1);
      if (key === '__proto__') {
        return jerr('forbidden-json-key', `member name "__proto__" at position ${i} is not allowed`, i, pointerOf(kinds, counts, currentKey, depth) + '/__proto__');
      }
      if (key === 'prototype' && ctorValue[top] === true) {
        return jerr('forbidden-json-key', `member name "prototype" inside a "constructor" object at position ${i} is not allowed`, i, pointerOf(kinds, counts, currentKey, depth) + '/prototype');
      }
      const seen = keys[top]!;
      let dup: boolean;
      if (Array.isArray(seen)) {
        dup = seen.includes(key);
        if (!dup) {
          if (seen.length >= SMALL_KEY_SET) {
            const set = new Set(seen);
            set.add(key);
            keys[top] = set;
          } else seen.push(key);
        }
      } else {
        dup = seen.has(key);
        if (!dup) seen.add(key);
      }
      if (dup) {
        return jerr('duplicate-json-key', `member name ${JSON.stringify(key)} appears twice in the object at ${pointerOf(kinds, counts, currentKey, depth) || '/'} (position ${i})`, i, pointerOf(kinds, counts, currentKey, depth));
      }
      counts[top] = counts[top]! + 1;
      currentKey[top] = key;
      i = end;
      while (i < n) {
        c = s.charCodeAt(i);
        if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
        else break;
      }
      if (i >= n || c !== 0x3a /* : */) return unexpected(s, i, '":" after the member name');
      i++;
      valueOfCtor = key === 'constructor';
      state = S_VALUE;
      continue;
    }

    // state is S_VALUE or S_VALUE_OR_CLOSE
    if (depth > 0) {
      const top = depth - 1;
      if (kinds[top] === ARRAY) {
        if (c === 0x5d && state === S_VALUE_OR_CLOSE) {
          depth--;
          kinds.pop(); counts.pop(); keys.pop(); currentKey.pop(); ctorValue.pop();
          state = S_AFTER_VALUE;
          i++;
          continue;
        }
        const count = counts[top]! + 1;
        if (count > maxArrayLength) {
          return jerr('json-array-too-long', `an array has more than ${maxArrayLength} elements (at position ${i})`, i, pointerOf(kinds, counts, currentKey, depth));
        }
        counts[top] = count;
      }
    }
    const isCtorValue = valueOfCtor;
    valueOfCtor = false;
    if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (depth >= maxDepth) {
        return jerr('json-too-deep', `nesting deeper than ${maxDepth} levels at position ${i}`, i, pointerOf(kinds, counts, currentKey, depth + 1));
      }
      depth++;
      const isObject = c === 0x7b;
      kinds.push(isObject ? OBJECT : ARRAY);
      counts.push(0);
      keys.push(isObject ? [] : EMPTY_KEYS);
      currentKey.push('');
      ctorValue.push(isObject && isCtorValue);
      state = isObject ? S_KEY_OR_CLOSE : S_VALUE_OR_CLOSE;
      i++;
      continue;
    }
    if (c === 0x22) {
      const end = scanString(s, i);
      if (typeof end !== 'number') return end;
      if (lastStringLength > maxStringLength) {
        return jerr('json-string-too-long', `a string at position ${i} is ${lastStringLength} characters long; the limit is ${maxStringLength}`, i, pointerOf(kinds, counts, currentKey, depth + 1));
      }
      i = end;
      state = S_AFTER_VALUE;
      continue;
    }
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      // number = [ "-" ] ( "0" / 1-9 *DIGIT ) [ "." 1*DIGIT ] [ ( "e" / "E" ) [ "+" / "-" ] 1*DIGIT ]
      // A digit after a leading "0" ends the number here and is then refused as unexpected.
      let j = c === 0x2d ? i + 1 : i;
      let d = j < n ? s.charCodeAt(j) : -1;
      if (d === 0x30) j++;
      else if (d >= 0x31 && d <= 0x39) j = skipDigits(s, j + 1);
      else return jerr('malformed-json', `expected a digit at position ${j}`, j);
      d = j < n ? s.charCodeAt(j) : -1;
      if (d === 0x2e /* . */) {
        j++;
        if (!isDigitAt(s, j)) return jerr('malformed-json', `expected a digit after the decimal point at position ${j}`, j);
        j = skipDigits(s, j);
        d = j < n ? s.charCodeAt(j) : -1;
      }
      if (d === 0x65 || d === 0x45) {
        j++;
        d = j < n ? s.charCodeAt(j) : -1;
        if (d === 0x2b || d === 0x2d) j++;
        if (!isDigitAt(s, j)) return jerr('malformed-json', `expected a digit in the exponent at position ${j}`, j);
        j = skipDigits(s, j);
      }
      i = j;
      state = S_AFTER_VALUE;
      continue;
    }
    if (c === 0x74 /* t */ && s.startsWith('true', i)) { i += 4; state = S_AFTER_VALUE; continue; }
    if (c === 0x66 /* f */ && s.startsWith('false', i)) { i += 5; state = S_AFTER_VALUE; continue; }
    if (c === 0x6e /* n */ && s.startsWith('null', i)) { i += 4; state = S_AFTER_VALUE; continue; }
    return unexpected(s, i, state === S_VALUE_OR_CLOSE ? 'a value or "]"' : 'a value');
  }
  if (state === S_AFTER_VALUE && depth === 0) return null;
  return jerr('malformed-json', n === 0 ? 'empty JSON text' : `unexpected end of JSON input at position ${n}`, n);
}

const EMPTY_KEYS: string[] = [];

/** Extracts N from a JSON.parse message "... at position N" (Node 20 gives it for most errors). */
export function jsonParsePosition(message: string): number | undefined {
  const m = /\bat position (\d+)/.exec(message);
  return m ? Number(m[1]) : undefined;
}

/**
 * Parses one JSON text under `limits`. A Buffer must be UTF-8 (invalid bytes: `invalid-utf8` with
 * the byte offset of the first bad sequence). Never throws; never recurses.
 */
export function parseJsonLimited(text: string | Buffer, limits: JsonLimits): JsonResult {
  let s: string;
  if (typeof text === 'string') s = text;
  else {
    const bad = firstInvalidUtf8(text);
    if (bad >= 0) return { ok: false, code: 'invalid-utf8', detail: `invalid UTF-8 at byte ${bad}`, position: bad };
    s = text.toString('utf8');
  }
  if (s.charCodeAt(0) === 0xfeff) {
    return { ok: false, code: 'malformed-json', detail: 'a leading byte order mark (U+FEFF) is not allowed', position: 0 };
  }
  const problem = scanJson(s, limits);
  if (problem !== null) return problem;
  try {
    return { ok: true, value: JSON.parse(s) as unknown };
  } catch (e) {
    // The scan accepted what JSON.parse refused: a scanner bug. Still a 400, never a crash.
    const message = e instanceof Error ? e.message : String(e);
    const position = jsonParsePosition(message);
    return position === undefined
      ? { ok: false, code: 'malformed-json', detail: message }
      : { ok: false, code: 'malformed-json', detail: message, position };
  }
}

/**
 * Byte offset of the first invalid UTF-8 sequence in `buf` (overlong forms, surrogates, code points
 * above U+10FFFF and truncated sequences included), or -1 when it is all valid. ASCII runs are
 * skipped quickly; the common all-valid case costs one native check.
 */
export function firstInvalidUtf8(buf: Buffer): number {
  if (isUtf8(buf)) return -1;
  const n = buf.length;
  let i = 0;
  while (i < n) {
    const b = buf[i]!;
    if (b < 0x80) { i++; continue; }
    let need: number;
    let min: number;
    let cp: number;
    if (b >= 0xc2 && b <= 0xdf) { need = 1; min = 0x80; cp = b & 0x1f; }
    else if (b >= 0xe0 && b <= 0xef) { need = 2; min = 0x800; cp = b & 0x0f; }
    else if (b >= 0xf0 && b <= 0xf4) { need = 3; min = 0x10000; cp = b & 0x07; }
    else return i;
    for (let k = 1; k <= need; k++) {
      const cb = buf[i + k];
      if (cb === undefined || (cb & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (cb & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += need + 1;
  }
  return -1; // unreachable when isUtf8 said no, kept for safety
}
