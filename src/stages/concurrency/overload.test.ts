import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LoadShedder, compileLoadShedding } from './overload.js';
import { ServicePool } from '../../services/services.js';
import { silentLogger } from '../../observability/logger.js';

describe('LoadShedder', () => {
  it('sheds while a window lags past the threshold and stops at the first calm window', async () => {
    const s = new LoadShedder({ eventLoopLagMs: 50, retryAfterSeconds: 3 }, silentLogger);
    assert.deepEqual(s.headers, { 'retry-after': '3' });
    s.decide(10);
    assert.equal(s.shedding, false);
    s.decide(51);
    assert.equal(s.shedding, true);
    assert.equal(s.lagMs, 51);
    s.decide(50);
    assert.equal(s.shedding, false, 'at the threshold is not over it');
    s.decide(500);
    await s.close();
    assert.equal(s.shedding, false, 'a closed shedder never sheds');
  });

  it('is off without a loadShedding block and shared by generations with the same settings', async () => {
    const pool = new ServicePool();
    assert.equal(compileLoadShedding(undefined, pool.scope(), silentLogger), undefined);
    const first = pool.scope();
    const a = compileLoadShedding({ eventLoopLagMs: 100 }, first, silentLogger)!;
    first.commit();
    const b = compileLoadShedding({ eventLoopLagMs: 100 }, pool.scope(), silentLogger);
    const c = compileLoadShedding({ eventLoopLagMs: 200 }, pool.scope(), silentLogger)!;
    assert.equal(b, a);
    assert.notEqual(c, a);
    await c.close();
    await pool.closeAll();
  });
});
