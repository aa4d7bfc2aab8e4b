// A running gateway in one process: its listeners, the status listener, and the active configuration
// generation. Reload compiles a new generation first and swaps only if that succeeds; requests already
// in flight finish on the generation they started with.
import type { GatewayConfig, ListenerConfig } from '../config/schema.js';
import { compileGateway, resolveLimits } from './compile.js';
import type { GatewayRuntime } from './runtime.js';
import { startListener, type Listener } from '../server/listener.js';
import type { RuntimeHolder } from '../server/handler.js';
import { startStatusServer, type StatusServer } from '../status/status-server.js';
import type { Logger } from '../observability/logger.js';
import type { Upstream } from '../upstream/types.js';

export interface GatewayOptions {
  logger: Logger;
  /** directory that relative file paths in the configuration (certificates, keys, CA bundles) are resolved against; default the working directory */
  baseDir?: string;
  /** false: no access log whatever the config says (tests) */
  accessLog?: boolean;
  /** false: no status listener whatever the config says */
  status?: boolean;
}

export class Gateway {
  private readonly holder: RuntimeHolder;
  private readonly listeners = new Map<string, { listener: Listener; key: string }>();
  private status: StatusServer | undefined;
  private generation = 1;
  private closing = false;
  private config: GatewayConfig;

  private constructor(config: GatewayConfig, runtime: GatewayRuntime, private readonly opts: GatewayOptions) {
    this.config = config;
    this.holder = { current: runtime };
  }

  static async start(config: GatewayConfig, opts: GatewayOptions): Promise<Gateway> {
    const runtime = compileGateway(config, { generation: 1, logger: opts.logger, onUpstreamEvent: upstreamLogger(opts.logger), ...(opts.accessLog === false ? { accessLog: false } : {}) });
    const gw = new Gateway(config, runtime, opts);
    try {
      for (const u of runtime.upstreams.values()) u.start();
      for (const l of config.listeners) await gw.openListener(l);
      const st = config.server?.status;
      if (opts.status !== false && st?.enabled !== false) {
        gw.status = await startStatusServer(gw.holder, st?.address ?? '127.0.0.1', st?.port ?? 9901);
      }
    } catch (err) {
      await gw.close(0);
      throw err;
    }
    return gw;
  }

  get runtime(): GatewayRuntime { return this.holder.current; }

  /** Bound address of a listener (tests use port 0). */
  address(name: string): { address: string; port: number } {
    const l = this.listeners.get(name);
    if (!l) throw new Error(`no listener named ${name}`);
    return l.listener.address();
  }

  statusAddress(): { address: string; port: number } | undefined { return this.status?.address(); }

  /**
   * Apply a new, already validated configuration. Compiles first: on a compile error nothing changes and
   * the error is thrown. Listeners whose address, port or header-size limit changed are replaced (the old
   * one drains); the others keep their sockets and pick up new limits.
   */
  async reload(config: GatewayConfig): Promise<void> {
    if (this.closing) throw new Error('gateway is shutting down');
    const old = this.holder.current;
    const reused = new Map<string, Upstream>();
    const prevUpstreams = this.config.upstreams ?? {};
    for (const [name, u] of Object.entries(config.upstreams ?? {})) {
      // An unchanged upstream keeps its pools, health state and breaker: reloads must not reset ejections.
      const prev = prevUpstreams[name];
      const live = old.upstreams.get(name);
      if (prev !== undefined && live !== undefined && JSON.stringify(prev) === JSON.stringify(u)) reused.set(name, live);
    }
    const next = compileGateway(config, {
      generation: ++this.generation,
      logger: this.opts.logger,
      onUpstreamEvent: upstreamLogger(this.opts.logger),
      reuseUpstreams: reused,
      ...(this.opts.accessLog === false ? { accessLog: false } : {}),
    });
    for (const [name, u] of next.upstreams) if (reused.get(name) !== u) u.start();

    // Listener changes first, so a new listener is up before traffic can be routed to its routes.
    const wanted = new Map(config.listeners.map((l) => [l.name, l]));
    this.holder.current = next;
    for (const [name, l] of wanted) {
      const have = this.listeners.get(name);
      if (have === undefined) await this.openListener(l);
      else if (have.key !== listenerKey(l)) {
        await have.listener.close(config.server?.shutdownTimeoutMs ?? 30_000).catch(() => undefined);
        this.listeners.delete(name);
        await this.openListener(l);
      } else applyMutableLimits(have.listener, l);
    }
    for (const [name, have] of this.listeners) {
      if (!wanted.has(name)) {
        this.listeners.delete(name);
        void have.listener.close(config.server?.shutdownTimeoutMs ?? 30_000);
      }
    }
    this.config = config;
    retire(old, next, this.opts.logger);
  }

  /** Graceful stop: stop accepting, finish in-flight requests up to the deadline, close pools and logs. */
  async close(deadlineMs = this.config.server?.shutdownTimeoutMs ?? 30_000): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    await Promise.all([...this.listeners.values()].map((l) => l.listener.close(deadlineMs)));
    this.listeners.clear();
    await this.status?.close();
    const rt = this.holder.current;
    await Promise.all([...rt.upstreams.values()].map((u) => u.close().catch(() => undefined)));
    rt.accessLog?.close();
  }

  private async openListener(l: ListenerConfig): Promise<void> {
    const limits = resolveLimits(l.limits);
    const listener = await startListener(this.holder, l.name, l.address ?? '0.0.0.0', l.port, limits);
    this.listeners.set(l.name, { listener, key: listenerKey(l) });
  }
}

function listenerKey(l: ListenerConfig): string {
  return JSON.stringify([l.address ?? '0.0.0.0', l.port, l.limits?.maxHeaderBytes]);
}

function applyMutableLimits(listener: Listener, l: ListenerConfig): void {
  const lim = resolveLimits(l.limits);
  const s = listener.server;
  s.requestTimeout = lim.requestTimeoutMs;
  s.headersTimeout = Math.min(lim.headersTimeoutMs, lim.requestTimeoutMs || lim.headersTimeoutMs);
  s.keepAliveTimeout = lim.keepAliveTimeoutMs;
  s.maxHeadersCount = lim.maxHeaderCount + 1;
  s.maxConnections = lim.maxConnections;
  s.maxRequestsPerSocket = lim.maxRequestsPerConnection;
}

/** Closes what the old generation owned and the new one does not, once the old generation's requests are done. */
function retire(old: GatewayRuntime, next: GatewayRuntime, logger: Logger): void {
  const keep = new Set(next.upstreams.values());
  const drop = [...old.upstreams.values()].filter((u) => !keep.has(u));
  const closeAll = () => {
    for (const u of drop) u.close().catch((err: unknown) => logger.warn({ err }, 'closing retired upstream failed'));
    if (old.accessLog !== next.accessLog) old.accessLog?.close();
  };
  if (old.inflight.count === 0) return closeAll();
  // Requests of the old generation may still be between stages and about to dispatch: wait for them.
  old.inflight.onIdle = closeAll;
}

function upstreamLogger(logger: Logger) {
  return (name: string, e: { type: string }) => logger.info({ upstream: name, event: e }, `upstream ${name}: ${e.type}`);
}
