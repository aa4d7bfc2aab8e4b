// The default security-event subscribers: every event counted, log lines capped per (type, reason, route)
// per window so a flood of refusals cannot become a flood of synchronous log writes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { register } from 'prom-client';
import { SecurityEventBus, attachDefaultSubscribers, SECURITY_LOG_BURST, SECURITY_LOG_WINDOW_MS, emitOverloadRefusal, emitProtocolRefusal, isProtocolRefusalReason, type SecurityEvent } from './security-events.js';
import { captureLogger } from '../../test/helpers/servers.js';

const event = (reason: string, route = 'r'): SecurityEvent => ({ type: 'rate-limit', reason, route, clientIp: '192.0.2.1', requestId: 'id', time: 0 });

async function counted(reason: string): Promise<number> {
  const v = (await register.getSingleMetric('portcullis_security_events_total')?.get())?.values.find((x) => x.labels.reason === reason);
  return v?.value ?? 0;
}

test('a flood logs SECURITY_LOG_BURST lines per key per window, counts all, and reports the suppressed number next', async () => {
  const bus = new SecurityEventBus();
  const cap = captureLogger();
  let t = 1_000_000;
  const stop = attachDefaultSubscribers(bus, cap.logger, () => t);
  try {
    for (let i = 0; i < 500; i++) bus.emit(event('flood-test'));
    bus.emit(event('other-reason'));
    const lines = (): Record<string, unknown>[] => cap.lines.filter((l) => l.event === 'security' && l.reason === 'flood-test');
    assert.equal(lines().length, SECURITY_LOG_BURST);
    assert.equal(cap.lines.filter((l) => l.reason === 'other-reason').length, 1, 'another key has its own budget');
    assert.equal(await counted('flood-test'), 500, 'the metric sees every event');
    t += SECURITY_LOG_WINDOW_MS;
    bus.emit(event('flood-test'));
    assert.equal(lines().length, SECURITY_LOG_BURST + 1);
    assert.equal(lines().at(-1)!.suppressed, 500 - SECURITY_LOG_BURST);
    bus.emit(event('flood-test'));
    assert.equal(lines().at(-1)!.suppressed, undefined);
  } finally {
    stop();
  }
});

test('protocol and overload helpers: one event each, route-less before routing, handler codes map through', () => {
  const bus = new SecurityEventBus();
  const seen: SecurityEvent[] = [];
  bus.subscribe((e) => seen.push(e));
  const req = { id: 'req-1', clientIp: '198.51.100.7', routeId: '' };
  for (const code of ['ambiguous-length', 'bad-host', 'bad-transfer-encoding', 'bad-path', 'uri-too-long', 'too-many-headers', 'body-too-large']) {
    assert.ok(isProtocolRefusalReason(code), code);
    emitProtocolRefusal(bus, code, req, 5);
  }
  assert.equal(isProtocolRefusalReason('no-route'), false);
  assert.equal(isProtocolRefusalReason('overloaded'), false);
  emitOverloadRefusal(bus, { ...req, routeId: 'api' }, 6);
  assert.equal(seen.length, 8);
  assert.deepEqual(seen[0], { type: 'protocol', reason: 'ambiguous-length', route: '', clientIp: '198.51.100.7', requestId: 'req-1', time: 5 });
  assert.deepEqual(seen[7], { type: 'overload', reason: 'overloaded', route: 'api', clientIp: '198.51.100.7', requestId: 'req-1', time: 6 });
});

test('the security log line carries the upstream of upstream-tls events', () => {
  const bus = new SecurityEventBus();
  const log = captureLogger();
  const stop = attachDefaultSubscribers(bus, log.logger);
  bus.emit({ type: 'upstream-tls', reason: 'tls-verify-failed', route: '', clientIp: '', requestId: '', upstream: 'payments', time: 0 });
  stop();
  const line = log.lines.find((l) => l.event === 'security' && l.type === 'upstream-tls');
  assert.equal(line?.upstream, 'payments');
  assert.equal(line?.reason, 'tls-verify-failed');
});
