// Raw-socket tools for the protocol tests: send exact bytes, learn whether the gateway closed the
// connection, and split what came back into HTTP/1.1 responses (Content-Length or chunked framing).
import net from 'node:net';
import assert from 'node:assert/strict';
import type { TestUpstream } from '../helpers/upstream.js';

export interface Exchange {
  /** everything received, latin1 */
  text: string;
  /** the gateway ended or reset the connection (false: we gave up after `idleMs` of silence) */
  closed: boolean;
  /** ms from the first byte sent until the connection closed (or we gave up) */
  ms: number;
  responses: ParsedResponse[];
}

export interface ParsedResponse {
  status: number;
  headers: Map<string, string[]>;
  body: string;
  header(name: string): string | undefined;
}

export interface ExchangeOptions {
  /** give up after this long without a byte from the server (default 2000) */
  idleMs?: number;
  /** stop early (and report closed=false) once this returns true for the parsed responses */
  until?: (responses: ParsedResponse[]) => boolean;
}

/** Connects, writes `bytes` (a string is sent as latin1, so '\xff' is one byte) and collects the reply. */
export function exchange(port: number, bytes: string | Buffer | readonly (string | Buffer)[], opts: ExchangeOptions = {}): Promise<Exchange> {
  const idleMs = opts.idleMs ?? 2000;
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let start = 0;
    let timer: NodeJS.Timeout | undefined;
    let settled = false;
    const finish = (closed: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s.destroy();
      const text = Buffer.concat(chunks).toString('latin1');
      resolve({ text, closed, ms: performance.now() - start, responses: parseResponses(text) });
    };
    const arm = () => { clearTimeout(timer); timer = setTimeout(() => finish(false), idleMs); };
    s.on('connect', () => {
      start = performance.now();
      for (const b of Array.isArray(bytes) ? bytes : [bytes]) s.write(typeof b === 'string' ? Buffer.from(b, 'latin1') : b);
      arm();
    });
    s.on('data', (c: Buffer) => {
      chunks.push(c);
      if (opts.until !== undefined && opts.until(parseResponses(Buffer.concat(chunks).toString('latin1')))) return finish(false);
      arm();
    });
    s.on('end', () => finish(true));
    s.on('close', () => finish(true));
    s.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNRESET' || e.code === 'EPIPE' ? finish(true) : reject(e)));
  });
}

/** Splits a byte stream into complete responses; an incomplete trailing one is left out. 1xx are kept. */
export function parseResponses(text: string): ParsedResponse[] {
  const out: ParsedResponse[] = [];
  let pos = 0;
  while (pos < text.length) {
    const headEnd = text.indexOf('\r\n\r\n', pos);
    if (headEnd === -1) break;
    const lines = text.slice(pos, headEnd).split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
    if (m === null) break;
    const status = Number(m[1]);
    const headers = new Map<string, string[]>();
    for (const line of lines.slice(1)) {
      const i = line.indexOf(':');
      const k = line.slice(0, i).trim().toLowerCase();
      const list = headers.get(k) ?? [];
      list.push(line.slice(i + 1).trim());
      headers.set(k, list);
    }
    let p = headEnd + 4;
    let body = '';
    const cl = headers.get('content-length')?.[0];
    const te = headers.get('transfer-encoding')?.[0];
    if (status >= 100 && status < 200) {
      // interim response: no body
    } else if (te !== undefined && te.toLowerCase() === 'chunked') {
      let complete = false;
      for (;;) {
        const eol = text.indexOf('\r\n', p);
        if (eol === -1) break;
        const size = parseInt(text.slice(p, eol), 16);
        if (Number.isNaN(size)) break;
        if (size === 0) {
          const end = text.indexOf('\r\n\r\n', eol);
          if (end === -1) break;
          p = end + 4;
          complete = true;
          break;
        }
        if (text.length < eol + 2 + size + 2) break;
        body += text.slice(eol + 2, eol + 2 + size);
        p = eol + 2 + size + 2;
      }
      if (!complete) break;
    } else if (cl !== undefined) {
      const n = Number(cl);
      if (text.length < p + n) break;
      body = text.slice(p, p + n);
      p += n;
    } else {
      // close-delimited
      body = text.slice(p);
      p = text.length;
    }
    out.push({ status, headers, body, header: (name) => headers.get(name)?.[0] });
    pos = p;
  }
  return out;
}

/** Final (non-1xx) responses only. */
export function finals(rs: readonly ParsedResponse[]): ParsedResponse[] {
  return rs.filter((r) => r.status >= 200);
}

/** A gateway-generated error: RFC 9457 body, request id in body and header, security headers, no fingerprint. */
export function assertProblem(r: ParsedResponse, status: number, requestIdHeader = 'x-request-id'): Record<string, unknown> {
  assert.equal(r.status, status, `status ${r.status}, body ${r.body}`);
  assert.equal(r.header('content-type'), 'application/problem+json');
  assert.equal(r.header('x-content-type-options'), 'nosniff');
  assert.equal(r.headers.has('server'), false, 'no Server header');
  assert.equal(r.headers.has('x-powered-by'), false, 'no X-Powered-By header');
  const body = JSON.parse(r.body) as Record<string, unknown>;
  assert.equal(body.status, status);
  assert.match(String(body.type), /^https:\/\/portcullis\.dev\/problems\/[a-z-]+$/);
  const id = r.header(requestIdHeader);
  assert.ok(id !== undefined && id.length > 0, 'request id header present');
  assert.equal(body.request_id, id, 'request_id in the body matches the header');
  return body;
}

/**
 * The gateway still works and the upstream saw nothing but what we expect: sends a normal request with a
 * unique path (under `prefix`, which must route to `up`) on a fresh connection, waits for its 200, then returns the upstream's requests since `mark`.
 */
export async function canary(port: number, up: TestUpstream, mark: number, tag: string, prefix = '/canary'): Promise<TestUpstream['seen']> {
  const path = `${prefix}/${tag.replace(/[^A-Za-z0-9]+/g, '-')}`;
  const ex = await exchange(port, `GET ${path} HTTP/1.1\r\nHost: canary.test\r\nConnection: close\r\n\r\n`);
  const r = finals(ex.responses)[0];
  assert.equal(r?.status, 200, `gateway still serves after "${tag}" (got ${JSON.stringify(ex.text.slice(0, 200))})`);
  const since = up.seen.slice(mark);
  assert.equal(since.at(-1)?.url, path, 'the canary reached the upstream last');
  return since.slice(0, -1);
}
