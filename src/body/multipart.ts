// multipart/form-data (RFC 7578), parsed by @fastify/busboy from the already-buffered body.
//
// Busboy is asked to hand every part over as a byte stream (isPartAFile always true) so that this
// module, not busboy, decides what a part is and decodes it:
//   - a part whose Content-Disposition has a `filename` parameter is a file: its bytes are kept as
//     sent, and so is the file name (`preservePath`: "../../etc/passwd" stays that, for the WAF to
//     see; it is never used as a path here);
//   - any other part is a field: its value must be UTF-8 (busboy would silently substitute U+FFFD);
//     a per-part charset parameter is not honoured.
// A part without a `name`, or with a Content-Transfer-Encoding other than 7bit/8bit/binary (RFC 7578
// deprecates it and backends differ on whether they decode base64/quoted-printable), is refused.
// Parts whose Content-Disposition is not form-data are skipped by busboy (they still count as parts).

import { Busboy } from '@fastify/busboy';
import type { Readable } from 'node:stream';
import { firstInvalidUtf8 } from './json.js';

export interface MultipartLimits {
  readonly maxParts: number;
  readonly maxFields: number;
  readonly maxFieldBytes: number;
  readonly maxFiles: number;
  readonly maxFileBytes: number;
}

export interface MultipartField {
  readonly name: string;
  readonly value: string;
}

export interface MultipartFile {
  /** The form field name. */
  readonly field: string;
  /** As sent, not sanitized; "" when the form sent an empty file input. */
  readonly filename: string;
  /** The part's media type, lower-cased, without parameters ("text/plain" when the part has none). */
  readonly contentType: string;
  readonly size: number;
  readonly data: Buffer;
}

export type MultipartErrorCode =
  | 'multipart-bad-boundary'
  | 'multipart-truncated'
  | 'multipart-malformed'
  | 'invalid-utf8'
  | 'multipart-too-many-parts'
  | 'multipart-too-many-fields'
  | 'multipart-too-many-files'
  | 'multipart-field-too-large'
  | 'multipart-file-too-large';

export interface MultipartError {
  readonly ok: false;
  readonly status: 400 | 413;
  readonly code: MultipartErrorCode;
  readonly detail: string;
}

export type MultipartResult =
  | { readonly ok: true; readonly fields: readonly MultipartField[]; readonly files: readonly MultipartFile[] }
  | MultipartError;

// RFC 2046 5.1.1: boundary := 0*69<bchars> bcharsnospace
const BOUNDARY = /^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/;

/** True when `b` is a valid RFC 2046 boundary (1 to 70 bchars, not ending in a space). */
export function isValidBoundary(b: string): boolean {
  return BOUNDARY.test(b);
}

/**
 * Parses a multipart/form-data body. `contentTypeHeader` is the request's Content-Type value (busboy
 * reads the boundary from it); `boundary` is the boundary parameter the caller already extracted
 * with parseContentType (undefined when absent). Never rejects.
 */
export function parseMultipart(
  raw: Buffer,
  contentTypeHeader: string,
  boundary: string | undefined,
  limits: MultipartLimits,
): Promise<MultipartResult> {
  if (boundary === undefined) {
    return Promise.resolve(fail(400, 'multipart-bad-boundary', 'multipart/form-data without a boundary parameter'));
  }
  if (!isValidBoundary(boundary)) {
    return Promise.resolve(fail(400, 'multipart-bad-boundary', 'the boundary parameter is not 1 to 70 RFC 2046 characters'));
  }
  return new Promise<MultipartResult>((resolve) => {
    const fields: MultipartField[] = [];
    const files: MultipartFile[] = [];
    let settled = false;
    let boy: InstanceType<typeof Busboy>;
    const settle = (r: MultipartResult): void => {
      if (settled) return;
      settled = true;
      resolve(r);
    };
    const stop = (e: MultipartError): void => {
      settle(e);
      // Nothing more to learn; let the rest of the buffered input be discarded.
      boy.removeAllListeners('file');
      boy.on('file', (_f: string, stream: Readable) => { stream.on('error', noop); stream.resume(); });
    };
    let nFields = 0;
    let nFiles = 0;
    try {
      boy = new Busboy({
        headers: { 'content-type': contentTypeHeader },
        preservePath: true,
        isPartAFile: () => true,
        limits: {
          parts: limits.maxParts,
          // Files and fields are counted and sized here, per kind (busboy sees every part as a file).
          files: Infinity,
          fields: Infinity,
          fileSize: Infinity,
        },
      });
    } catch (e) {
      settle(fail(400, 'multipart-bad-boundary', e instanceof Error ? e.message : String(e)));
      return;
    }
    boy.on('partsLimit', () => stop(fail(413, 'multipart-too-many-parts', `more than ${limits.maxParts} parts`)));
    boy.on('error', (e: unknown) => {
      const message = e instanceof Error ? e.message : String(e);
      if (/unexpected end/i.test(message)) stop(fail(400, 'multipart-truncated', 'the body ends before the closing boundary'));
      else stop(fail(400, 'multipart-malformed', message));
    });
    boy.on('finish', () => {
      settle({ ok: true, fields: Object.freeze(fields), files: Object.freeze(files) });
    });
    boy.on('file', (name: string | undefined, stream: Readable, filename: string | undefined, encoding: string, mimeType: string) => {
      stream.on('error', noop); // a truncated part also errors the busboy instance, handled there
      if (settled) { stream.resume(); return; }
      if (name === undefined) {
        stream.resume();
        stop(fail(400, 'multipart-malformed', 'a part has no name parameter in its Content-Disposition'));
        return;
      }
      const cte = encoding.toLowerCase();
      if (cte !== '7bit' && cte !== '8bit' && cte !== 'binary') {
        stream.resume();
        stop(fail(400, 'multipart-malformed', `part "${name}" has Content-Transfer-Encoding ${encoding}; only 7bit, 8bit and binary are accepted`));
        return;
      }
      const isFile = filename !== undefined;
      if (isFile ? ++nFiles > limits.maxFiles : ++nFields > limits.maxFields) {
        stream.resume();
        stop(isFile
          ? fail(413, 'multipart-too-many-files', `more than ${limits.maxFiles} files`)
          : fail(413, 'multipart-too-many-fields', `more than ${limits.maxFields} fields`));
        return;
      }
      const max = isFile ? limits.maxFileBytes : limits.maxFieldBytes;
      const chunks: Buffer[] = [];
      let size = 0;
      let over = false;
      stream.on('data', (chunk: Buffer) => {
        if (over) return;
        size += chunk.length;
        if (size > max) {
          over = true;
          chunks.length = 0;
          stop(isFile
            ? fail(413, 'multipart-file-too-large', `file "${filename}" in field "${name}" is larger than ${max} bytes`)
            : fail(413, 'multipart-field-too-large', `field "${name}" is larger than ${max} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      stream.on('end', () => {
        if (over || settled) return;
        const data = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
        if (isFile) {
          files.push(Object.freeze({ field: name, filename, contentType: mimeType, size, data }));
          return;
        }
        const bad = firstInvalidUtf8(data);
        if (bad >= 0) {
          stop(fail(400, 'invalid-utf8', `the value of field "${name}" is not UTF-8 (byte ${bad} of the value)`));
          return;
        }
        fields.push(Object.freeze({ name, value: data.toString('utf8') }));
      });
    });
    boy.end(raw);
  });
}

function noop(): void {}

function fail(status: 400 | 413, code: MultipartErrorCode, detail: string): MultipartError {
  return { ok: false, status, code, detail };
}
