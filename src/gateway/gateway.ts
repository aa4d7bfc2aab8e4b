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
import { createTlsManager, type TlsManager } from '../tls/manager.js';
import { ServicePool } from '../services/services.js';
import { SecurityEventBus, attachDefaultSubscribers } from '../observability/security-events.js';
import type { AnyStageModule } from '../pipeline/types.js';

export interface GatewayOptions {
  logger: Logger;
  /** directory that relative file paths in the configuration (certificates, keys, CA bundles) are resolved against; default the working directory */
  baseDir?: string;
  /** false: no access log whatever the config says (tests) */
  accessLog?: boolean;
  /** false: no status listener whatever the config says */
  status?: boolean;
  /** security event bus to publish on (tests subscribe to it); default a new one with the log and metric subscribers */
  events?: SecurityEventBus;
  /** the stage modules (default: the registry); tests and embedders add stages of their own */
  stages?: readonly AnyStageModule[];
}

export class Gateway {
  private readonly holder: RuntimeHolder;
  private readonly listeners = new Map<string, { listener: Listener; key: string }>();
  private status: StatusServer | undefined;
  private generation = 1;
  private closing = false;
  private config: GatewayConfig;

  private constructor(config: GatewayConfig, runtime: GatewayRuntime, private readonly opts: GatewayOptions, private readonly pool: ServicePool, readonly events: SecurityEventBus) {
    this.config = config;
    this.holder = { current: runtime };
  }

  static async start(config: GatewayConfig, opts: GatewayOptions): Promise<Gateway> {
    const pool = new ServicePool();
    const events = opts.events ?? new SecurityEventBus();
    if (opts.events === undefined) attachDefaultSubscribers(events, opts.logger);
    const services = pool.scope();
    const runtime = compileGateway(config, { generation: 1, logger: opts.logger, onUpstreamEvent: upstreamLogger(opts.logger), ...(opts.accessLog === false ? { accessLog: false } : {}), baseDir: opts.baseDir, services, events, ...(opts.stages !== undefined ? { stages: opts.stages } : {}) });
    // Key stores load their index, state stores connect: nothing is served before they can answer.
    try {
      await services.ready();
    } catch (err) {
      await Promise.all([...runtime.upstreams.values()].map((u) => u.close().catch(() => undefined)));
      runtime.accessLog?.close();
      throw err;
    }
    services.commit();
    const gw = new Gateway(config, runtime, opts, pool, events);
    try {
      for (const u of runtime.upstreams.values()) u.start();
      for (const [i, l] of config.listeners.entries()) await gw.openListener(l, gw.tlsManagerFor(l, i));
      const st = config.server?.status;
      if (opts.status !== false && st?.enabled !== false) {
        gw.status = await startStatusServer(gw.holder, st?.address ?? '127.0.0.1', st?.port ?? 9901, { adminToken: () => gw.config.server?.status?.adminToken });
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
   * the error is thrown. Listeners whose address, port, header-size limit, `tls` or `http2` block changed
   * are replaced (the old one stops accepting and drains while the new one takes over the port); the others
   * keep their sockets and pick up new limits. Certificate renewals need no reload (src/tls/manager.ts).
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
    const services = this.pool.scope();
    let next: GatewayRuntime;
    try {
      next = compileGateway(config, {
        generation: ++this.generation,
        logger: this.opts.logger,
        onUpstreamEvent: upstreamLogger(this.opts.logger),
        reuseUpstreams: reused,
        ...(this.opts.accessLog === false ? { accessLog: false } : {}),
        baseDir: this.opts.baseDir,
        services,
        events: this.events,
        ...(this.opts.stages !== undefined ? { stages: this.opts.stages } : {}),
      });
    } catch (err) {
      await services.abandon();
      throw err;
    }
    const closeNewUpstreams = () => { for (const [name, u] of next.upstreams) if (reused.get(name) !== u) void u.close().catch(() => undefined); };
    // New key stores / state stores must be able to answer before the generation goes live.
    try {
      await services.ready();
    } catch (err) {
      closeNewUpstreams();
      next.accessLog?.close();
      throw err;
    }
    // Certificates of new or changed HTTPS listeners are loaded before anything changes: a missing file or
    // a key mismatch rejects the reload and the running listeners keep serving.
    const prepared = new Map<string, TlsManager | undefined>();
    try {
      config.listeners.forEach((l, i) => {
        const have = this.listeners.get(l.name);
        if (have === undefined || have.key !== listenerKey(l)) prepared.set(l.name, this.tlsManagerFor(l, i));
      });
    } catch (err) {
      for (const m of prepared.values()) m?.close();
      closeNewUpstreams();
      await services.abandon();
      throw err;
    }
    services.commit();
    for (const [name, u] of next.upstreams) if (reused.get(name) !== u) u.start();

    // Listener changes first, so a new listener is up before traffic can be routed to its routes.
    const wanted = new Map(config.listeners.map((l) => [l.name, l]));
    this.holder.current = next;
    const deadline = config.server?.shutdownTimeoutMs ?? 30_000;
    try {
      for (const [name, l] of wanted) {
        const have = this.listeners.get(name);
        if (have === undefined) await this.openListener(l, takeOnce(prepared, name));
        else if (have.key !== listenerKey(l)) {
          // close() stops accepting at once (the port is free again); its connections drain in the background.
          void have.listener.close(deadline).catch(() => undefined);
          this.listeners.delete(name);
          await this.openListener(l, takeOnce(prepared, name));
        } else have.listener.applyLimits(resolveLimits(l.limits));
      }
    } finally {
      // Managers of listeners that were not opened (an earlier listen failed) must not keep watching files.
      for (const m of prepared.values()) m?.close();
    }
    for (const [name, have] of this.listeners) {
      if (!wanted.has(name)) {
        this.listeners.delete(name);
        void have.listener.close(config.server?.shutdownTimeoutMs ?? 30_000);
      }
    }
    this.config = config;
    retire(old, next, this.opts.logger, this.pool);
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
    await this.pool.closeAll();
  }

  /** The TLS manager of an HTTPS listener (loads and checks its certificates; throws TlsConfigError). */
  private tlsManagerFor(l: ListenerConfig, index: number): TlsManager | undefined {
    if (l.tls === undefined) return undefined;
    return createTlsManager(l.name, l.tls, { logger: this.opts.logger, baseDir: this.opts.baseDir ?? process.cwd(), path: `listeners[${index}].tls` });
  }

  private async openListener(l: ListenerConfig, tlsManager: TlsManager | undefined): Promise<void> {
    const limits = resolveLimits(l.limits);
    const listener = await startListener(this.holder, l.name, l.address ?? '0.0.0.0', l.port, limits, {
      ...(tlsManager !== undefined ? { tls: tlsManager } : {}),
      ...(l.http2 !== undefined ? { http2: l.http2 } : {}),
      logger: this.opts.logger,
    });
    this.listeners.set(l.name, { listener, key: listenerKey(l) });
  }

  /** The TLS manager of an HTTPS listener (certificates served, forced reload); undefined for plain HTTP. */
  tls(name: string): TlsManager | undefined {
    return this.listeners.get(name)?.listener.tls;
  }
}

function takeOnce<K, V>(m: Map<K, V>, k: K): V | undefined {
  const v = m.get(k);
  m.delete(k);
  return v;
}

/** What a running listener cannot change in place: it is replaced when this differs. */
function listenerKey(l: ListenerConfig): string {
  return JSON.stringify([l.address ?? '0.0.0.0', l.port, l.limits?.maxHeaderBytes, l.tls ?? null, l.http2 ?? null]);
}

/** Closes what the old generation owned and the new one does not, once the old generation's requests are done. */
function retire(old: GatewayRuntime, next: GatewayRuntime, logger: Logger, pool: ServicePool): void {
  const keep = new Set(next.upstreams.values());
  const drop = [...old.upstreams.values()].filter((u) => !keep.has(u));
  const closeAll = () => {
    for (const u of drop) u.close().catch((err: unknown) => logger.warn({ err }, 'closing retired upstream failed'));
    if (old.accessLog !== next.accessLog) old.accessLog?.close();
    // Services (key stores, JWKS caches) that no live or draining generation uses any more.
    void pool.release(old.services).catch((err: unknown) => logger.warn({ err }, 'closing retired services failed'));
  };
  if (old.inflight.count === 0) return closeAll();
  // Requests of the old generation may still be between stages and about to dispatch: wait for them.
  // onIdle runs when the last one's response closes, before that request writes its access-log line:
  // close on the next turn, once it has.
  old.inflight.onIdle = () => { old.inflight.onIdle = undefined; setImmediate(closeAll); };
}

function upstreamLogger(logger: Logger) {
  return (name: string, e: { type: string }) => logger.info({ upstream: name, event: e }, `upstream ${name}: ${e.type}`);
}
