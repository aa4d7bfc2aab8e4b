// Request-body decoding: turns the buffered bytes of a request body into one parsed, read-only view
// for the stages that declared they need it. The upstream still receives `raw`, byte for byte.
// This folder is a foundation: it imports only node: builtins and @fastify/busboy (never stages,
// server, gateway or proxy code). Full reference: docs/request-body.md.
//
// Public API
// ----------
//   interface BodyLimits            the nine limits (all required, resolved)
//   type BodyLimitsConfig           Partial<BodyLimits>, the config-level shape
//   const DEFAULT_BODY_LIMITS       the defaults (maxFileBytes: Infinity, i.e. bounded by the body limit)
//   function resolveBodyLimits(config?: BodyLimitsConfig, bodyLimitBytes?: number): BodyLimits
//   type BodyKind                   'json' | 'form' | 'multipart' | 'text' | 'binary' | 'none'
//   interface ParsedBody            the frozen view (ParsedField, ParsedFile for its parts)
//   type BodyError                  { status: 400 | 413 | 415; code; detail; position?; pointer? }
//   type BodyErrorCode              every code BodyError.code can take
//   function decodeBody(raw: Buffer, contentTypeHeader: string | undefined, limits: BodyLimits):
//       ParsedBody | BodyError | Promise<ParsedBody | BodyError>
//     synchronous (no promise, no microtask) for every kind but multipart, which returns a Promise
//     that never rejects;
//   function decodeBodyAsync(raw, contentTypeHeader, limits): Promise<ParsedBody | BodyError>
//   function isBodyError(r: ParsedBody | BodyError): r is BodyError
//   function parseJsonLimited(text: string | Buffer, limits: JsonLimits): JsonResult
//   function parseContentType(header: string): ContentTypeResult      (from ./content-type.js)
//   function parseUrlencoded(raw: Buffer, limits: FormLimits): FormResult
//   function parseMultipart(raw, contentTypeHeader, boundary, limits): Promise<MultipartResult>
//
// Decisions (see docs/request-body.md for the full list):
//   - an empty body (0 bytes) is kind 'none' whatever the Content-Type says, even a malformed one;
//   - a non-empty body with a malformed Content-Type is 400 bad-content-type;
//   - JSON must be UTF-8 with no BOM; charset other than utf-8 is 415; `json` is JSON.parse output
//     (plain objects, no `__proto__` member can exist in it) and is NOT deep-frozen: the view, its
//     arrays and entries are frozen, the JSON value and Buffers are to be treated as read-only;
//   - every limit is 413, every malformation 400, an unsupported charset 415;
//   - BodyError.position is always a byte offset into `raw`.

import { isJsonMediaType, isUtf8Charset, parseContentType } from './content-type.js';
import { firstInvalidUtf8, parseJsonLimited } from './json.js';
import { parseUrlencoded } from './form.js';
import { parseMultipart } from './multipart.js';
import type { JsonErrorCode } from './json.js';
import type { FormErrorCode } from './form.js';
import type { MultipartErrorCode, MultipartResult } from './multipart.js';

export { parseContentType, isJsonMediaType, isUtf8Charset } from './content-type.js';
export type { ContentType, ContentTypeResult } from './content-type.js';
export { parseJsonLimited, scanJson, firstInvalidUtf8 } from './json.js';
export type { JsonLimits, JsonResult, JsonError, JsonErrorCode } from './json.js';
export { parseUrlencoded } from './form.js';
export type { FormLimits, FormResult, FormField, FormErrorCode } from './form.js';
export { parseMultipart, isValidBoundary } from './multipart.js';
export type { MultipartLimits, MultipartResult, MultipartField, MultipartFile, MultipartErrorCode } from './multipart.js';

export interface BodyLimits {
  /** JSON nesting depth; the top-level container is depth 1. */
  readonly maxDepth: number;
  /** Object members across the whole JSON document. */
  readonly maxKeys: number;
  /** Longest JSON string, member name or value, in UTF-16 code units after unescaping. */
  readonly maxStringLength: number;
  /** Elements of any one JSON array. */
  readonly maxArrayLength: number;
  /** Multipart parts, fields and files together. */
  readonly maxParts: number;
  /** Urlencoded fields; multipart non-file parts. */
  readonly maxFields: number;
  /** Bytes of one decoded urlencoded name or value, or of one multipart field value. */
  readonly maxFieldBytes: number;
  /** Bytes of one multipart file. */
  readonly maxFileBytes: number;
  /** Multipart file parts. */
  readonly maxFiles: number;
}

export type BodyLimitsConfig = Partial<BodyLimits>;

export const DEFAULT_BODY_LIMITS: BodyLimits = Object.freeze({
  maxDepth: 64,
  maxKeys: 10_000,
  maxStringLength: 1_048_576,
  maxArrayLength: 10_000,
  maxParts: 100,
  maxFields: 1000,
  maxFieldBytes: 1_048_576,
  maxFileBytes: Number.POSITIVE_INFINITY,
  maxFiles: 10,
});

/**
 * Fills a config-level partial with the defaults. `bodyLimitBytes` (the route's body limit) becomes
 * the default maxFileBytes; without it a file is bounded only by the body itself.
 */
export function resolveBodyLimits(config: BodyLimitsConfig = {}, bodyLimitBytes?: number): BodyLimits {
  const defaults = bodyLimitBytes === undefined ? DEFAULT_BODY_LIMITS : { ...DEFAULT_BODY_LIMITS, maxFileBytes: bodyLimitBytes };
  const out: Record<keyof BodyLimits, number> = { ...defaults };
  for (const k of Object.keys(DEFAULT_BODY_LIMITS) as (keyof BodyLimits)[]) {
    const v = config[k];
    if (v !== undefined) out[k] = v;
  }
  return Object.freeze(out);
}

export type BodyKind = 'json' | 'form' | 'multipart' | 'text' | 'binary' | 'none';

export interface ParsedField {
  readonly name: string;
  readonly value: string;
}

export interface ParsedFile {
  readonly field: string;
  readonly filename: string;
  readonly contentType: string;
  readonly size: number;
  readonly data: Buffer;
}

export interface ParsedBody {
  readonly kind: BodyKind;
  /** The exact bytes received (not copied: treat as read-only). */
  readonly raw: Buffer;
  /** Media type, lower-cased, without parameters; undefined without (or with an unparsable) Content-Type. */
  readonly contentType: string | undefined;
  /** The charset parameter as sent, lower-cased. */
  readonly charset: string | undefined;
  /** kind 'json': the JSON.parse value. Not frozen: treat as read-only. */
  readonly json?: unknown;
  /** kinds 'form' and 'multipart': non-file fields in order, duplicates kept. */
  readonly fields?: readonly ParsedField[];
  /** kind 'multipart': file parts in order. */
  readonly files?: readonly ParsedFile[];
  /** kind 'text': the UTF-8 decoded body; undefined when the charset is not UTF-8. */
  readonly text?: string;
}

export type BodyErrorCode = 'bad-content-type' | 'unsupported-charset' | JsonErrorCode | FormErrorCode | MultipartErrorCode;

export interface BodyError {
  readonly status: 400 | 413 | 415;
  readonly code: BodyErrorCode;
  readonly detail: string;
  /** Byte offset into the body, when the error has a place. */
  readonly position?: number;
  /** RFC 6901 JSON Pointer, for JSON errors located in the document. */
  readonly pointer?: string;
}

const LIMIT_CODES: ReadonlySet<string> = new Set([
  'json-too-deep', 'json-too-many-keys', 'json-string-too-long', 'json-array-too-long',
  'form-too-many-fields', 'form-field-too-large',
]);

function bodyError(status: 400 | 413 | 415, code: BodyErrorCode, detail: string, position?: number, pointer?: string): BodyError {
  const e: { -readonly [K in keyof BodyError]: BodyError[K] } = { status, code, detail };
  if (position !== undefined) e.position = position;
  if (pointer !== undefined) e.pointer = pointer;
  return Object.freeze(e);
}

export function isBodyError(r: ParsedBody | BodyError): r is BodyError {
  return 'status' in r;
}

const fatalUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Byte offset of UTF-16 index `i` in the UTF-8 text `s` (only used on error paths). */
function byteOffsetOf(s: string | undefined, i: number | undefined): number | undefined {
  if (i === undefined || s === undefined) return i;
  return Buffer.byteLength(s.slice(0, i), 'utf8');
}

/**
 * Decodes `raw` by its Content-Type. Synchronous for every kind but multipart (a Promise, which
 * never rejects). Never throws.
 */
export function decodeBody(
  raw: Buffer,
  contentTypeHeader: string | undefined,
  limits: BodyLimits,
): ParsedBody | BodyError | Promise<ParsedBody | BodyError> {
  let mediaType: string | undefined;
  let charset: string | undefined;
  let params: Readonly<Record<string, string>> | undefined;
  if (contentTypeHeader !== undefined) {
    const ct = parseContentType(contentTypeHeader);
    if (ct.ok) {
      mediaType = ct.value.mediaType;
      params = ct.value.params;
      charset = params['charset']?.toLowerCase();
    } else if (raw.length > 0) {
      return bodyError(400, 'bad-content-type', `malformed Content-Type: ${ct.detail} (character ${ct.position})`);
    }
  }
  if (raw.length === 0) return view('none', raw, mediaType, charset);
  if (mediaType === undefined) return view('binary', raw, undefined, undefined);

  if (isJsonMediaType(mediaType)) {
    if (!isUtf8Charset(charset)) return bodyError(415, 'unsupported-charset', `JSON must be UTF-8, not charset=${charset}`);
    const bad = firstInvalidUtf8(raw);
    if (bad >= 0) return bodyError(400, 'invalid-utf8', `invalid UTF-8 at byte ${bad}`, bad);
    const text = raw.toString('utf8');
    const r = parseJsonLimited(text, limits);
    if (!r.ok) {
      const status = LIMIT_CODES.has(r.code) ? 413 : 400;
      return bodyError(status, r.code, r.detail, byteOffsetOf(text, r.position), r.pointer);
    }
    return view('json', raw, mediaType, charset, { json: r.value });
  }

  if (mediaType === 'application/x-www-form-urlencoded') {
    if (!isUtf8Charset(charset)) return bodyError(415, 'unsupported-charset', `form bodies must be UTF-8, not charset=${charset}`);
    const r = parseUrlencoded(raw, limits);
    if (!r.ok) return bodyError(LIMIT_CODES.has(r.code) ? 413 : 400, r.code, r.detail, r.position);
    return view('form', raw, mediaType, charset, { fields: r.fields });
  }

  if (mediaType === 'multipart/form-data') {
    return parseMultipart(raw, contentTypeHeader!, params?.['boundary'], limits).then(
      (r: MultipartResult) =>
        r.ok ? view('multipart', raw, mediaType, charset, { fields: r.fields, files: r.files }) : bodyError(r.status, r.code, r.detail),
      (e: unknown) => bodyError(400, 'multipart-malformed', e instanceof Error ? e.message : String(e)),
    );
  }

  if (mediaType.startsWith('text/')) {
    if (!isUtf8Charset(charset)) return view('text', raw, mediaType, charset);
    let text: string;
    try {
      text = fatalUtf8.decode(raw);
    } catch {
      const bad = firstInvalidUtf8(raw);
      return bodyError(400, 'invalid-utf8', `invalid UTF-8 at byte ${bad}`, bad);
    }
    return view('text', raw, mediaType, charset, { text });
  }

  return view('binary', raw, mediaType, charset);
}

/** decodeBody, always as a Promise (never rejects). */
export async function decodeBodyAsync(raw: Buffer, contentTypeHeader: string | undefined, limits: BodyLimits): Promise<ParsedBody | BodyError> {
  return decodeBody(raw, contentTypeHeader, limits);
}

function view(
  kind: BodyKind,
  raw: Buffer,
  contentType: string | undefined,
  charset: string | undefined,
  extra?: { json?: unknown; fields?: readonly ParsedField[]; files?: readonly ParsedFile[]; text?: string },
): ParsedBody {
  return Object.freeze({ kind, raw, contentType, charset, ...extra });
}
