// The connection caps are counted per worker process (a 2-worker node admitted 1,024 connections from
// one address with maxConnectionsPerIp 512): the published schema must say so, not promise a node-wide cap.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

test('schema: maxConnectionsPerIp is documented as a per-worker cap', () => {
  const text = readFileSync(new URL('../../schema/portcullis.schema.json', import.meta.url), 'utf8');
  const m = /"maxConnectionsPerIp":\s*\{[^}]*"description":\s*"([^"]*)"/.exec(text);
  assert.ok(m, 'maxConnectionsPerIp has a description');
  assert.match(m[1]!, /per worker/);
});
