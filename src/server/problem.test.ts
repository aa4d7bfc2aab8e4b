// writeRawProblem: the raw answer on an upgrade socket carries a stage's headers, but never a value that
// could split the response or a duplicate of the framing headers it writes itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import type { Socket } from 'node:net';
import { writeRawProblem } from './problem.js';

function capture(): { socket: Socket; text: () => string } {
  const s = new PassThrough();
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  return { socket: s as unknown as Socket, text: () => Buffer.concat(chunks).toString('latin1') };
}

test('stage headers are written; CR/LF values and framing-header names are dropped', () => {
  const { socket, text } = capture();
  writeRawProblem(socket, 429, 'rate-limited', 'slow down', 'req-1', 'x-request-id', {
    'retry-after': '7',
    ratelimit: '"a";r=0;t=7',
    'www-authenticate': ['Bearer', 'DPoP algs="ES256"'],
    'x-evil': 'a\r\nset-cookie: pwned=1',
    'content-length': '0',
    'bad name': 'x',
  }, { retry_after: 7 });
  const [head, body] = text().split('\r\n\r\n');
  const lines = head!.split('\r\n');
  assert.equal(lines[0], 'HTTP/1.1 429 Too Many Requests');
  assert.ok(lines.includes('retry-after: 7'));
  assert.ok(lines.includes('ratelimit: "a";r=0;t=7'));
  assert.ok(lines.includes('www-authenticate: Bearer') && lines.includes('www-authenticate: DPoP algs="ES256"'));
  assert.ok(!head!.includes('pwned') && !head!.includes('x-evil') && !head!.includes('bad name'));
  assert.equal(lines.filter((l) => l.startsWith('content-length:')).length, 1);
  assert.equal(lines.find((l) => l.startsWith('content-length:')), `content-length: ${Buffer.byteLength(body!)}`);
  const problem = JSON.parse(body!) as Record<string, unknown>;
  assert.equal(problem.retry_after, 7);
  assert.equal(problem.request_id, 'req-1');
});
