import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { editDistance, formatPath, parsePath, suggest, type PathSegment } from './issues.js';

describe('formatPath / parsePath', () => {
  const cases: [PathSegment[], string][] = [
    [[], ''],
    [['routes', 1, 'match', 'path'], 'routes[1].match.path'],
    [['routes', 0, 'requestHeaders', 'set', 'X-Api-Key'], 'routes[0].requestHeaders.set["X-Api-Key"]'],
    [['upstreams', 'api.v1', 'targets', 0], 'upstreams["api.v1"].targets[0]'],
    [['upstreams', 'we"ird]', 'x'], 'upstreams["we\\"ird]"].x'],
    [['$schema'], '$schema'],
    [[3], '[3]'],
  ];
  for (const [segs, text] of cases) {
    it(`${JSON.stringify(segs)} <-> ${text || '(empty)'}`, () => {
      assert.equal(formatPath(segs), text);
      assert.deepEqual(parsePath(text), segs);
    });
  }
  it('rejects malformed paths', () => {
    assert.throws(() => parsePath('a[1'));
    assert.throws(() => parsePath('a[x]'));
  });
});

describe('suggest', () => {
  it('finds the closest candidate within distance 2', () => {
    assert.equal(suggest('pathh', ['path', 'pathPrefix', 'methods']), 'path');
    assert.equal(suggest('pathprefix', ['path', 'pathPrefix']), 'pathPrefix');
    assert.equal(suggest('adress', ['address', 'port']), 'address');
    assert.equal(suggest('hosts', ['hosts']), undefined, 'an exact match is not a suggestion');
    assert.equal(suggest('zzzzzz', ['path', 'port']), undefined);
    assert.equal(suggest('ab', ['xy']), undefined, 'short words need a closer match');
  });
  it('counts transpositions as one edit', () => {
    assert.equal(editDistance('ab', 'ba'), 1);
    assert.equal(editDistance('kitten', 'sitting'), 3);
    assert.equal(editDistance('', 'abc'), 3);
  });
});
