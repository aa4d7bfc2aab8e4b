// Starting an in-process gateway for tests, and small clients (undici for normal traffic, raw sockets
// for protocol attacks that no well-behaved client can send).
import net from 'node:net';
import { request as undiciRequest, Agent } from 'undici';
import { Gateway } from '../../src/gateway/gateway.js';
import type { GatewayConfig } from '../../src/config/schema.js';
import { silentLogger, type Logger } from '../../src/observability/logger.js';
import type { SecurityEventBus } from '../../src/observability/security-events.js';
import type { AnyStageModule } from '../../src/pipeline/types.js';

export async function startGateway(config: GatewayConfig, opts: { logger?: Logger; accessLog?: boolean; status?: boolean; events?: SecurityEventBus; stages?: readonly AnyStageModule[] } = {}): Promise<{ gw: Gateway; port: number; base: string }> {
  const gw = await Gateway.start(config, { logger: opts.logger ?? silentLogger, accessLog: opts.accessLog ?? false, status: opts.status ?? false, ...(opts.events !== undefined ? { events: opts.events } : {}), ...(opts.stages !== undefined ? { stages: opts.stages } : {}) });
  const name = config.listeners[0]!.name;
  const port = gw.address(name).port;
  return { gw, port, base: `http://127.0.0.1:${port}` };
}

/** Minimal config: one listener on an ephemeral port, given routes and upstreams. */
export function config(partial: Partial<GatewayConfig> & Pick<GatewayConfig, 'routes'>): GatewayConfig {
  return {
    listeners: [{ name: 'main', address: '127.0.0.1', port: 0 }],
    ...partial,
  };
}

// One dispatcher for all test requests; no keep-alive reuse surprises across tests.
export const client = new Agent({ keepAliveTimeout: 1000, connections: 50 });

export interface SimpleResponse { status: number; headers: Record<string, string | string[] | undefined>; body: string; json<T = Record<string, unknown>>(): T }

export async function get(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<SimpleResponse> {
  const r = await undiciRequest(url, { method: (opts.method ?? 'GET') as 'GET', headers: opts.headers, body: opts.body, dispatcher: client });
  const body = await r.body.text();
  return { status: r.statusCode, headers: r.headers, body, json: <T>() => JSON.parse(body) as T };
}

/** Sends raw bytes and resolves with everything the server sent before it closed (or until `idleMs` of silence). */
export function raw(port: number, bytes: string | Buffer, idleMs = 1500): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    const done = () => { clearTimeout(timer); s.destroy(); resolve(Buffer.concat(chunks).toString('latin1')); };
    const arm = () => { clearTimeout(timer); timer = setTimeout(done, idleMs); };
    s.on('connect', () => { s.write(bytes); arm(); });
    s.on('data', (c: Buffer) => { chunks.push(c); arm(); });
    s.on('end', done);
    s.on('close', done);
    s.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNRESET' ? done() : reject(e)));
  });
}

/** Status code of the first response in a raw reply ('' if none). */
export function statusOf(reply: string): number {
  const m = reply.match(/^HTTP\/1\.1 (\d{3})/);
  return m ? Number(m[1]) : 0;
}
