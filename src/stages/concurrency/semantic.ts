// Configuration checks for route `concurrency:` blocks and the top-level `overload:` block (run by
// src/config/semantic.ts).
import type { GatewayConfig } from '../../config/schema.js';
import type { SemanticIssue } from '../../config/issues.js';
import { formatPath, suggest, type PathSegment } from '../../config/issues.js';

export function concurrencyIssues(cfg: GatewayConfig): SemanticIssue[] {
  const out: SemanticIssue[] = [];
  const err = (path: PathSegment[], message: string): void => { out.push({ path: formatPath(path), message, severity: 'error' }); };
  const warn = (path: PathSegment[], message: string): void => { out.push({ path: formatPath(path), message, severity: 'warning' }); };

  const upstreamNames = Object.keys(cfg.upstreams ?? {});
  const bulkheads = cfg.overload?.upstreams ?? {};
  for (const name of Object.keys(bulkheads)) {
    if (!upstreamNames.includes(name)) {
      const hint = suggest(name, upstreamNames);
      err(['overload', 'upstreams', name], `no upstream named "${name}"${hint ? ` (did you mean "${hint}"?)` : ''}`);
    }
  }

  const ls = cfg.overload?.loadShedding;
  if (ls !== undefined) {
    if (ls.eventLoopLagMs < 20) warn(['overload', 'loadShedding', 'eventLoopLagMs'], 'below 20 ms, ordinary garbage-collection pauses trip load shedding: healthy traffic gets 503');
    const window = ls.sampleIntervalMs ?? 100;
    if (window > 1000) warn(['overload', 'loadShedding', 'sampleIntervalMs'], 'shedding starts and stops at most once per sample window: over a second reacts late to a flood and keeps refusing after it');
  }

  cfg.routes.forEach((r, i) => {
    const c = r.concurrency;
    if (c === undefined) return;
    const base: PathSegment[] = ['routes', i, 'concurrency'];
    const upstreamGate = r.upstream !== undefined && bulkheads[r.upstream] !== undefined;
    if (c.maxInFlight === undefined && c.perConsumer === undefined && !upstreamGate) {
      warn(base, 'sets no limit: add maxInFlight or perConsumer, or a bulkhead for the route\'s upstream under overload.upstreams');
    }
    if (c.queue !== undefined && c.maxInFlight === undefined && c.perConsumer === undefined) {
      warn([...base, 'queue'], 'applies to maxInFlight and perConsumer, and neither is set (the upstream bulkhead has its own queue under overload.upstreams)');
    }
    if (c.perConsumer !== undefined && c.maxInFlight !== undefined && c.perConsumer.maxInFlight >= c.maxInFlight) {
      warn([...base, 'perConsumer', 'maxInFlight'], `not below the route's maxInFlight (${c.maxInFlight}): one consumer can still fill the route`);
    }
    if (c.perConsumer !== undefined && r.authentication === undefined && r.clientCert === undefined) {
      warn([...base, 'perConsumer'], 'nothing on this route establishes an identity: every request counts against its client IP');
    }
    if (r.websocket === true) {
      warn(base, 'WebSocket upgrades on this route are not counted (a tunnel is not a request in flight); plain requests are');
    }
  });
  return out;
}
