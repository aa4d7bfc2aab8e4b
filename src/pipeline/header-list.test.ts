import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HeaderList } from './header-list.js';

test('set replaces every value, append keeps them, remove drops all copies', () => {
  const h = new HeaderList(['a', '1', 'set-cookie', 'x=1', 'b', '2', 'set-cookie', 'y=2']);
  assert.equal(h.get('a'), '1');
  assert.equal(h.get('zz'), undefined);
  h.set('set-cookie', 'z=3');
  assert.deepEqual(h.items, ['a', '1', 'b', '2', 'set-cookie', 'z=3']);
  h.append('set-cookie', 'w=4');
  h.remove('a');
  assert.deepEqual(h.items, ['b', '2', 'set-cookie', 'z=3', 'set-cookie', 'w=4']);
  assert.equal(h.has('b'), true);
  h.remove('set-cookie');
  assert.deepEqual(h.items, ['b', '2']);
});
