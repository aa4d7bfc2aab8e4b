// RFC 9457 problem responses. Every error the gateway produces goes through here, so clients always get
// the same safe shape: no stack traces, no upstream internals, always the request id.
import { STATUS_CODES, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export const PROBLEM_BASE = 'https://portcullis.dev/problems/';

/**
 * Set on a connection once the gateway answered on it with `connection: close`. RFC 9112 9.6: no further
 * request on it may be processed. This matters most after a refused malformed or ambiguous request: how
 * the parser framed it is exactly what is in doubt, so bytes after it must never become a request.
 */
export const kCondemned = Symbol('portcullis.condemned');
export type CondemnableSocket = Socket & { [kCondemned]?: true };

/** `extensions` are extra members (RFC 9457 3.2); they never override the standard ones. */
export function problemBody(status: number, code: string, detail: string | undefined, requestId: string, extensions?: Readonly<Record<string, string | number>>): string {
  return JSON.stringify({
    ...extensions,
    type: PROBLEM_BASE + code,
    title: STATUS_CODES[status] ?? 'Error',
    status,
    ...(detail ? { detail } : {}),
    request_id: requestId,
  });
}

/** Headers every gateway-generated response carries. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-store',
});

export function sendProblem(
  res: ServerResponse,
  status: number,
  code: string,
  detail: string | undefined,
  requestId: string,
  requestIdHeader: string,
  extra?: OutgoingHttpHeaders,
  closeConnection = false,
  extensions?: Readonly<Record<string, string | number>>,
): void {
  if (res.headersSent) {
    // Too late for a clean answer: cut the connection so the client sees a broken response, never a truncated "success".
    res.destroy();
    return;
  }
  const body = problemBody(status, code, detail, requestId, extensions);
  const headers: OutgoingHttpHeaders = {
    ...extra,
    'content-type': 'application/problem+json',
    'content-length': Buffer.byteLength(body),
    ...SECURITY_HEADERS,
    [requestIdHeader]: requestId,
  };
  if (closeConnection) {
    headers.connection = 'close';
    const socket = res.req.socket as CondemnableSocket | null;
    if (socket) socket[kCondemned] = true;
  }
  res.writeHead(status, headers);
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/**
 * For errors the HTTP parser raises before a request object exists, and refused Upgrade requests: write a
 * raw response and close. `extra` carries a stage's headers (Retry-After, RateLimit, WWW-Authenticate…);
 * a value that could split the response (CR, LF) is dropped, not written.
 */
export function writeRawProblem(
  socket: Socket,
  status: number,
  code: string,
  detail: string,
  requestId: string,
  requestIdHeader: string,
  extra?: OutgoingHttpHeaders,
  extensions?: Readonly<Record<string, string | number>>,
): void {
  if (!socket.writable || socket.destroyed) return;
  const body = problemBody(status, code, detail, requestId, extensions);
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n`;
  if (extra !== undefined) {
    for (const name in extra) {
      const v = extra[name];
      if (v === undefined || !SAFE_HEADER_NAME.test(name)) continue;
      for (const one of Array.isArray(v) ? v : [String(v)]) {
        if (!UNSAFE_HEADER_VALUE.test(one)) head += `${name}: ${one}\r\n`;
      }
    }
  }
  socket.end(
    head +
      'content-type: application/problem+json\r\n' +
      `content-length: ${Buffer.byteLength(body)}\r\n` +
      'x-content-type-options: nosniff\r\ncache-control: no-store\r\n' +
      `${requestIdHeader}: ${requestId}\r\n` +
      'connection: close\r\n\r\n' +
      body,
  );
}

/** RFC 9110 token; the headers the raw writer sets itself are skipped so a stage cannot duplicate them */
const SAFE_HEADER_NAME = /^(?!(?:content-type|content-length|connection|x-content-type-options|cache-control)$)[!#$%&'*+.^_`|~0-9A-Za-z-]+$/i;
const UNSAFE_HEADER_VALUE = /[\r\n\0]/;
