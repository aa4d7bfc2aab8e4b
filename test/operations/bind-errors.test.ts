// A port that is already taken: the error names the listener and the setting that moves it. The status
// listener (on by default, 127.0.0.1:9901) is the one a first-time user does not know about.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Gateway } from '../../src/gateway/gateway.js';
import { silentLogger } from '../../src/observability/logger.js';
import { config } from '../helpers/gateway.js';

let taken: net.Server;
let port: number;
before(async () => {
  taken = net.createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  port = (taken.address() as net.AddressInfo).port;
});
after(() => new Promise<void>((resolve) => taken.close(() => resolve())));

const routes = [{ id: 'r', match: { pathPrefix: '/' }, respond: { status: 200 } }];

test('status port in use: names server.status and says how to move or disable it', async () => {
  const cfg = config({ server: { status: { address: '127.0.0.1', port } }, routes });
  await assert.rejects(Gateway.start(cfg, { logger: silentLogger, accessLog: false }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'EADDRINUSE');
    assert.match(err.message, new RegExp(`^server\\.status \\(the status listener: /healthz, /readyz, /metrics\\): cannot listen on 127\\.0\\.0\\.1:${port}: the address is already in use`));
    assert.match(err.message, /server\.status\.port/);
    assert.match(err.message, /server\.status\.enabled: false/);
    return true;
  });
  // and with it disabled the gateway starts
  const gw = await Gateway.start(config({ server: { status: { enabled: false } }, routes }), { logger: silentLogger, accessLog: false });
  await gw.close(0);
});

test('listener port in use: names the listener', async () => {
  const cfg = config({ routes, listeners: [{ name: 'public', address: '127.0.0.1', port }] });
  await assert.rejects(Gateway.start(cfg, { logger: silentLogger, accessLog: false, status: false }), (err: Error) => {
    assert.match(err.message, new RegExp(`^listener "public": cannot listen on 127\\.0\\.0\\.1:${port}: the address is already in use .*listeners\\[\\] with name: public`));
    return true;
  });
});
