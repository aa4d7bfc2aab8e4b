// A small strict Content-Type parser (RFC 9110 section 8.3, grammar in 5.6):
//
//   media-type = type "/" subtype parameters
//   parameters = *( OWS ";" OWS [ parameter ] )
//   parameter  = parameter-name "=" parameter-value
//   parameter-value = ( token / quoted-string )
//
// Leading and trailing OWS around the whole value is tolerated (field values are trimmed by HTTP
// parsers anyway). Type, subtype and parameter names are case-insensitive and returned lower-cased;
// parameter values are returned as sent (a multipart boundary is case-sensitive) with quoted-string
// escapes removed. Refused as malformed: an empty value, a missing or empty type or subtype, a
// character that is not a tchar where a token is expected, a parameter without "=" or with an empty
// value, an unterminated quoted-string, a control character, and a parameter name given twice (two
// `charset` or two `boundary` parameters are an ambiguity that different parsers settle
// differently, so nobody gets to choose).

export interface ContentType {
  /** `type/subtype`, lower-cased, without parameters. */
  readonly mediaType: string;
  readonly type: string;
  readonly subtype: string;
  /** Parameters by lower-cased name (null prototype), values as sent minus quoting. */
  readonly params: Readonly<Record<string, string>>;
}

export type ContentTypeResult =
  | { readonly ok: true; readonly value: ContentType }
  | { readonly ok: false; readonly detail: string; readonly position: number };

// tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TCHAR[c] = 1;

function isTchar(c: number): boolean {
  return c < 128 && TCHAR[c] === 1;
}

function isOws(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/** Parses a Content-Type field value. Never throws. */
export function parseContentType(header: string): ContentTypeResult {
  const n = header.length;
  let i = 0;
  const fail = (detail: string, position: number): ContentTypeResult => ({ ok: false, detail, position });
  while (i < n && isOws(header.charCodeAt(i))) i++;

  const typeStart = i;
  while (i < n && isTchar(header.charCodeAt(i))) i++;
  if (i === typeStart) return fail(i >= n ? 'empty media type' : 'media type must start with a token', i);
  const type = header.slice(typeStart, i).toLowerCase();
  if (i >= n || header.charCodeAt(i) !== 0x2f /* / */) return fail('expected "/" after the type', i);
  i++;
  const subStart = i;
  while (i < n && isTchar(header.charCodeAt(i))) i++;
  if (i === subStart) return fail('empty subtype', i);
  const subtype = header.slice(subStart, i).toLowerCase();

  const params: Record<string, string> = Object.create(null) as Record<string, string>;
  for (;;) {
    while (i < n && isOws(header.charCodeAt(i))) i++;
    if (i >= n) break;
    if (header.charCodeAt(i) !== 0x3b /* ; */) return fail('expected ";" or the end of the value', i);
    i++;
    while (i < n && isOws(header.charCodeAt(i))) i++;
    if (i >= n) break;
    if (header.charCodeAt(i) === 0x3b) continue; // empty parameter, allowed by the grammar
    const nameStart = i;
    while (i < n && isTchar(header.charCodeAt(i))) i++;
    if (i === nameStart) return fail('parameter name must be a token', i);
    const name = header.slice(nameStart, i).toLowerCase();
    if (i >= n || header.charCodeAt(i) !== 0x3d /* = */) return fail(`expected "=" after parameter "${name}"`, i);
    i++;
    let value: string;
    if (i < n && header.charCodeAt(i) === 0x22 /* " */) {
      const quoteAt = i;
      i++;
      let out = '';
      let runStart = i;
      for (;;) {
        if (i >= n) return fail('unterminated quoted-string', quoteAt);
        const c = header.charCodeAt(i);
        if (c === 0x22) {
          out += header.slice(runStart, i);
          i++;
          break;
        }
        if (c === 0x5c /* \ */) {
          // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
          const e = i + 1 < n ? header.charCodeAt(i + 1) : -1;
          if (e < 0 || !(e === 0x09 || (e >= 0x20 && e !== 0x7f && e <= 0xff))) return fail('invalid quoted-pair', i);
          out += header.slice(runStart, i) + header[i + 1];
          i += 2;
          runStart = i;
          continue;
        }
        // qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
        if (!(c === 0x09 || (c >= 0x20 && c !== 0x7f && c <= 0xff))) return fail('invalid character in quoted-string', i);
        i++;
      }
      value = out;
    } else {
      const valueStart = i;
      while (i < n && isTchar(header.charCodeAt(i))) i++;
      if (i === valueStart) return fail(`parameter "${name}" has an empty or invalid value`, i);
      value = header.slice(valueStart, i);
    }
    if (Object.prototype.hasOwnProperty.call(params, name)) return fail(`parameter "${name}" given twice`, nameStart);
    params[name] = value;
  }
  return { ok: true, value: Object.freeze({ mediaType: `${type}/${subtype}`, type, subtype, params: Object.freeze(params) }) };
}

/** `application/json` and any `application/*+json` (problem+json, merge-patch+json, …). */
export function isJsonMediaType(mediaType: string): boolean {
  return mediaType === 'application/json' || (mediaType.startsWith('application/') && mediaType.endsWith('+json'));
}

/** True for an absent charset parameter or one naming UTF-8 (`utf-8`, any case; `utf8` is tolerated). */
export function isUtf8Charset(charset: string | undefined): boolean {
  if (charset === undefined) return true;
  const c = charset.toLowerCase();
  return c === 'utf-8' || c === 'utf8';
}
