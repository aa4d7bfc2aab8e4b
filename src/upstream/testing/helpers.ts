// Test helpers for the upstream layer (excluded from the build).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { UpstreamEvent } from '../types.js';

/** A manually advanced clock. */
export function fakeClock(start = 1_000_000): { now: () => number; advance: (ms: number) => void; set: (t: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => { t += ms; }, set: (v) => { t = v; } };
}

/** Collects events and lets a test await one, bounded by a timeout (no sleeping). */
export function eventLog(): {
  events: UpstreamEvent[];
  onEvent: (e: UpstreamEvent) => void;
  waitFor: (pred: (e: UpstreamEvent) => boolean, timeoutMs?: number) => Promise<UpstreamEvent>;
} {
  const events: UpstreamEvent[] = [];
  const waiters: { pred: (e: UpstreamEvent) => boolean; resolve: (e: UpstreamEvent) => void }[] = [];
  let seen = 0; // waitFor only considers events after the previous match, so sequences can be awaited
  const onEvent = (e: UpstreamEvent): void => {
    events.push(e);
    for (let i = 0; i < waiters.length; i++) {
      const w = waiters[i]!;
      if (w.pred(e)) { waiters.splice(i, 1); seen = events.length; w.resolve(e); return; }
    }
  };
  const waitFor = (pred: (e: UpstreamEvent) => boolean, timeoutMs = 5000): Promise<UpstreamEvent> => {
    for (let i = seen; i < events.length; i++) {
      const e = events[i]!;
      if (pred(e)) { seen = i + 1; return Promise.resolve(e); }
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`event not seen within ${timeoutMs} ms; got ${JSON.stringify(events)}`)), timeoutMs);
      waiters.push({ pred, resolve: (e) => { clearTimeout(timer); resolve(e); } });
    });
  };
  return { events, onEvent, waitFor };
}

export interface TestServer { server: Server; url: string; close: () => Promise<void> }

export async function startServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<TestServer> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
