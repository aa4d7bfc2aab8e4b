// The programmatic API (package.json `main`/`types`): start an in-process gateway from a configuration
// object or file, reload it, stop it; validate a configuration; and the types an embedder needs to write
// a configuration or a stage of its own. Everything else under src/ is internal. See docs/programmatic-api.md.
import { dirname, resolve } from 'node:path';
import { Gateway } from './gateway/gateway.js';
import { loadConfigFile, validateConfig, formatIssue, type ConfigIssue, type LoadResult } from './config/load.js';
import type { GatewayConfig } from './config/schema.js';
import { createLogger, type Logger } from './observability/logger.js';
import type { AnyStageModule } from './pipeline/types.js';

export type { GatewayConfig, RouteConfig, ListenerConfig, UpstreamConfig } from './config/schema.js';
export type { ConfigIssue, LoadResult } from './config/load.js';
export type { StageModule, AnyStageModule, CompiledStage, CompileEnv, Rejection, StageOutcome, UpgradePolicy } from './pipeline/types.js';
export type { RequestContext } from './pipeline/context.js';
export type { HeaderList } from './pipeline/header-list.js';
export type { Logger } from './observability/logger.js';
export { STAGES } from './pipeline/registry.js';
export { validateConfig, formatIssue };

/** A configuration that failed to load or validate. `message` lists every error as `file:line:col: path: reason`. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly issues: readonly ConfigIssue[]) {
    super(`invalid configuration:\n  ${issues.map(formatIssue).join('\n  ')}`);
  }
}

export interface StartOptions {
  /** operational log (pino); default: JSON lines on stderr at PORTCULLIS_LOG_LEVEL (info) */
  logger?: Logger;
  /**
   * directory relative paths in the configuration (certificates, keys) are resolved against; default: the
   * configuration file's directory, or the working directory for a configuration object
   */
  baseDir?: string;
  /** false: no access log whatever the configuration says */
  accessLog?: boolean;
  /** false: no status listener whatever the configuration says */
  status?: boolean;
  /**
   * the stage modules, in place of the built-in ones (default: STAGES). To add a stage: `[...STAGES, mine]`.
   * Validation knows only the built-in stages' configuration blocks (see docs/programmatic-api.md).
   */
  stages?: readonly AnyStageModule[];
  /** environment for `${NAME}` substitution in configuration files; default process.env */
  env?: NodeJS.ProcessEnv;
}

export interface RunningGateway {
  /** bound address of the listener with that name (useful with `port: 0`) */
  address(listener: string): { address: string; port: number };
  /**
   * Validate and apply a new configuration (object or file path). A bad configuration throws and the
   * running one stays; requests in flight finish on the configuration they started with.
   */
  reload(config: GatewayConfig | string): Promise<void>;
  /** Graceful stop: stop accepting, let in-flight requests finish (up to `deadlineMs`, default server.shutdownTimeoutMs or 30 s). */
  stop(deadlineMs?: number): Promise<void>;
}

/** Loads (a path) or validates (an object); throws ConfigError on any error, logs warnings. */
async function resolveConfig(config: GatewayConfig | string, env: NodeJS.ProcessEnv, logger: Logger): Promise<GatewayConfig> {
  const result: LoadResult = typeof config === 'string' ? await loadConfigFile(config, env) : validateConfig(config);
  for (const w of result.warnings) logger.warn({ issue: formatIssue(w) }, 'config warning');
  if (!result.ok) throw new ConfigError(result.errors);
  return result.config;
}

/**
 * Start a gateway in this process (one process, no cluster workers; `server.workers` is ignored). `config`
 * is a configuration object or the path of a YAML/JSON file; either is validated like `portcullis validate`
 * does, and a bad one rejects with a ConfigError listing every problem.
 */
export async function startGateway(config: GatewayConfig | string, options: StartOptions = {}): Promise<RunningGateway> {
  const logger = options.logger ?? createLogger();
  const env = options.env ?? process.env;
  const baseDir = options.baseDir ?? (typeof config === 'string' ? dirname(resolve(config)) : undefined);
  const cfg = await resolveConfig(config, env, logger);
  const gw = await Gateway.start(cfg, {
    logger,
    ...(baseDir !== undefined ? { baseDir } : {}),
    ...(options.accessLog !== undefined ? { accessLog: options.accessLog } : {}),
    ...(options.status !== undefined ? { status: options.status } : {}),
    ...(options.stages !== undefined ? { stages: options.stages } : {}),
  });
  return {
    address: (listener) => gw.address(listener),
    reload: async (next) => gw.reload(await resolveConfig(next, env, logger)),
    stop: (deadlineMs) => (deadlineMs === undefined ? gw.close() : gw.close(deadlineMs)),
  };
}
