// Load shedding through a real gateway: the test blocks this process's event loop (the gateway runs
// in-process) with busy loops in a timer, then shows 503 overloaded with Retry-After, the status listener
// still answering, the metrics, and recovery once the loop is free again.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, config, get } from '../helpers/gateway.js';
import { captureLogger } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';
import { SHED_METRIC, LAG_METRIC } from '../../src/stages/concurrency/overload.js';

const log = captureLogger();
const { gw, base } = await startGateway(config({
  server: { status: { port: 0 } },
  overload: { loadShedding: { eventLoopLagMs: 80, sampleIntervalMs: 50, retryAfterSeconds: 2 } },
  routes: [{ id: 'hello', match: { pathPrefix: '/' }, respond: { status: 200, body: 'hi' } }],
}), { logger: log.logger, status: true });
const statusBase = `http://127.0.0.1:${gw.statusAddress()!.port}`;
after(() => gw.close(0));

/** Keeps the event loop busy: `busyMs` of synchronous work every few milliseconds. */
function blockLoop(busyMs: number): () => void {
  const t = setInterval(() => { const end = performance.now() + busyMs; while (performance.now() < end); }, 5);
  return () => clearInterval(t);
}

/** Waits until no shedding has been seen for 10 polls in a row (several sample windows). */
async function calm(shedder: { shedding: boolean }): Promise<void> {
  let quiet = 0;
  await waitFor(() => { quiet = shedder.shedding ? 0 : quiet + 1; return quiet >= 10; }, { what: 'shedding off', intervalMs: 20 });
}

const metric = async (name: string): Promise<number> => {
  const text = (await get(`${statusBase}/metrics`)).body;
  const m = new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
};

describe('load shedding', () => {
  it('answers 503 overloaded while the event loop lags, keeps the status listener up, and recovers', async () => {
    const shedder = gw.runtime.overload!;
    // Start-up work can itself lag the loop past the threshold: wait until it has been calm for a while.
    await calm(shedder);
    assert.equal((await get(`${base}/`)).status, 200);

    const stop = blockLoop(120);
    try {
      await waitFor(() => shedder.shedding, { what: 'shedding on' });
      const r = await get(`${base}/anything`);
      assert.equal(r.status, 503);
      assert.equal(r.headers['retry-after'], '2');
      assert.equal(r.headers['content-type'], 'application/problem+json');
      const body = r.json<{ type: string; request_id: string }>();
      assert.match(body.type, /\/overloaded$/);
      assert.ok(body.request_id.length > 0);
      // The operator surface is a separate server: it still answers.
      assert.equal((await get(`${statusBase}/healthz`)).status, 200);
      assert.ok(await metric(SHED_METRIC) >= 1);
      assert.ok(await metric(LAG_METRIC) > 0.08);
    } finally {
      stop();
    }
    await calm(shedder);
    assert.equal((await get(`${base}/`)).status, 200);
    const states = log.lines.filter((l) => l.event === 'load-shedding').map((l) => l.state);
    assert.deepEqual(states.slice(-2), ['on', 'off'], 'one log line when shedding starts, one when it stops');
  });

  it('a reload with the same settings keeps the same shedder (the probe is not restarted)', async () => {
    const before = gw.runtime.overload;
    await gw.reload(config({
      server: { status: { port: 0 } },
      overload: { loadShedding: { eventLoopLagMs: 80, sampleIntervalMs: 50, retryAfterSeconds: 2 } },
      routes: [{ id: 'hello2', match: { pathPrefix: '/' }, respond: { status: 200, body: 'hi' } }],
    }));
    assert.equal(gw.runtime.overload, before);
  });
});
