// application/x-www-form-urlencoded, decoded strictly.
//
// The body must be UTF-8. It is split on "&"; empty pieces ("a=1&&b=2", a trailing "&") are skipped,
// as every mainstream parser does. Each piece splits on its first "=" (no "=": the value is ""). In
// names and values "+" is a space and "%XX" a byte; the decoded bytes must be UTF-8. Unlike
// URLSearchParams (which keeps a stray "%" literally and turns invalid UTF-8 into U+FFFD, so the
// gateway and the backend could read different values), a "%" not followed by two hex digits is
// `malformed-form` and percent-encoded invalid UTF-8 is `invalid-utf8`.

import { firstInvalidUtf8 } from './json.js';

export interface FormLimits {
  readonly maxFields: number;
  readonly maxFieldBytes: number;
}

export interface FormField {
  readonly name: string;
  readonly value: string;
}

export type FormErrorCode = 'malformed-form' | 'invalid-utf8' | 'form-too-many-fields' | 'form-field-too-large';

export type FormResult =
  | { readonly ok: true; readonly fields: readonly FormField[] }
  | { readonly ok: false; readonly code: FormErrorCode; readonly detail: string; readonly position?: number };

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

type Decoded = string | { readonly code: 'malformed-form' | 'invalid-utf8'; readonly at: number };

/** Decodes one name or value: s[start, end). `at` in an error is a UTF-16 index into s. */
function decodeComponent(s: string, start: number, end: number): Decoded {
  let hasPercent = false;
  let hasPlus = false;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25) {
      if (!(i + 2 < end && isHex(s.charCodeAt(i + 1)) && isHex(s.charCodeAt(i + 2)))) return { code: 'malformed-form', at: i };
      hasPercent = true;
      i += 2;
    } else if (c === 0x2b) hasPlus = true;
  }
  let piece = s.slice(start, end);
  if (hasPlus) piece = piece.replaceAll('+', ' ');
  if (!hasPercent) return piece;
  try {
    return decodeURIComponent(piece); // every % is well-formed here, so a throw means invalid UTF-8
  } catch {
    return { code: 'invalid-utf8', at: start };
  }
}

/** Byte offset in the UTF-8 encoding of s of the UTF-16 index i. */
function byteOffset(s: string, i: number): number {
  return Buffer.byteLength(s.slice(0, i), 'utf8');
}

/** Parses an urlencoded body. `position` in an error is a byte offset into `raw`. Never throws. */
export function parseUrlencoded(raw: Buffer, limits: FormLimits): FormResult {
  const bad = firstInvalidUtf8(raw);
  if (bad >= 0) return { ok: false, code: 'invalid-utf8', detail: `invalid UTF-8 at byte ${bad}`, position: bad };
  const s = raw.toString('utf8');
  const fields: FormField[] = [];
  const n = s.length;
  let pos = 0;
  while (pos <= n) {
    let amp = s.indexOf('&', pos);
    if (amp < 0) amp = n;
    if (amp > pos) {
      if (fields.length >= limits.maxFields) {
        return { ok: false, code: 'form-too-many-fields', detail: `more than ${limits.maxFields} fields`, position: byteOffset(s, pos) };
      }
      let eq = s.indexOf('=', pos);
      if (eq < 0 || eq > amp) eq = amp;
      const name = decodeComponent(s, pos, eq);
      if (typeof name !== 'string') return componentError(s, name);
      const value = eq < amp ? decodeComponent(s, eq + 1, amp) : '';
      if (typeof value !== 'string') return componentError(s, value);
      for (const [what, text] of [['name', name], ['value', value]] as const) {
        const bytes = Buffer.byteLength(text, 'utf8');
        if (bytes > limits.maxFieldBytes) {
          return {
            ok: false,
            code: 'form-field-too-large',
            detail: `a field ${what} is ${bytes} bytes once decoded; the limit is ${limits.maxFieldBytes}`,
            position: byteOffset(s, pos),
          };
        }
      }
      fields.push(Object.freeze({ name, value }));
    }
    pos = amp + 1;
  }
  return { ok: true, fields: Object.freeze(fields) };
}

function componentError(s: string, e: Exclude<Decoded, string>): FormResult {
  const position = byteOffset(s, e.at);
  return e.code === 'malformed-form'
    ? { ok: false, code: 'malformed-form', detail: `"%" not followed by two hex digits at byte ${position}`, position }
    : { ok: false, code: 'invalid-utf8', detail: `percent-encoded bytes that are not UTF-8 in the field at byte ${position}`, position };
}
