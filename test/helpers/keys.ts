// API key test helpers: a fixed pepper, the real CLI as a child process, throwaway PostgreSQL schemas, and
// an IdentityEnv wired like the gateway's (config consumers + key store consumers, one service scope).
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { IdentityConfig } from '../../src/identity/schema.js';
import type { IdentityEnv } from '../../src/identity/env.js';
import { ServicePool } from '../../src/services/services.js';
import { SecurityEventBus } from '../../src/observability/security-events.js';
import { silentLogger, type Logger } from '../../src/observability/logger.js';
import { createStateStore } from '../../src/state/index.js';
import { createConsumerDirectory } from '../../src/identity/consumers.js';
import { generateApiKey, hashApiKey } from '../../src/identity/api-keys/format.js';
import { spawnTracked } from './process.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export const PEPPER = 'test-pepper-0123456789-abcdefghijklmnopqrstuvwxyz';
export const PG_URL = process.env.PORTCULLIS_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface CliResult { code: number | null; stdout: string; stderr: string }

/** Runs `portcullis ARGS` (the real bin, via tsx) with PORTCULLIS_KEY_PEPPER set unless env overrides it. */
export function runCli(args: readonly string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawnTracked(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      cwd: ROOT,
      env: { ...process.env, PORTCULLIS_KEY_PEPPER: PEPPER, ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin!.end(opts.input ?? '');
  });
}

/** The key printed by `keys create`/`rotate` (the `key:` line). */
export function keyFromOutput(out: string): string {
  const m = /^key:\s+(pcl_\S+)$/m.exec(out);
  if (m === null) throw new Error(`no key in CLI output:\n${out}`);
  return m[1]!;
}

export function keyIdFromOutput(out: string): string {
  const m = /^id:\s+(key_\S+)$/m.exec(out);
  if (m === null) throw new Error(`no key id in CLI output:\n${out}`);
  return m[1]!;
}

/** A unique PostgreSQL schema name for one test file run; drop it with dropSchema. */
export function uniqueSchema(prefix = 'pcl_test'): string {
  return `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`;
}

export async function dropSchema(schema: string): Promise<void> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await c.end();
  }
}

/** An IdentityEnv as the gateway builds it; `close()` closes the services it opened. */
export async function identityEnv(identity: IdentityConfig, opts: { baseDir?: string; logger?: Logger } = {}): Promise<{ env: IdentityEnv; ready(): Promise<void>; close(): Promise<void> }> {
  const pool = new ServicePool();
  const services = pool.scope();
  const baseDir = opts.baseDir ?? process.cwd();
  const logger = opts.logger ?? silentLogger;
  const env: IdentityEnv = {
    config: identity,
    services,
    baseDir,
    logger,
    events: new SecurityEventBus(),
    state: createStateStore(undefined),
    consumers: createConsumerDirectory(identity, services, baseDir, logger),
  };
  return {
    env,
    ready: async () => { await services.ready(); services.commit(); },
    close: async () => { await services.abandon(); await pool.closeAll(); },
  };
}

/**
 * Fresh API keys for the consumers `alice`, `bob`, … (key ids `ka`, `kb`, …) and the `identity:` block
 * that knows them: for tests that need several distinct consumers.
 */
export function consumersWithKeys<const T extends readonly string[]>(...ids: T): { keys: { [K in keyof T]: string }; identity: IdentityConfig } {
  const keys = ids.map(() => generateApiKey());
  return {
    keys: keys as { [K in keyof T]: string },
    identity: { pepper: PEPPER, consumers: ids.map((id, i) => ({ id, apiKeys: [{ id: `k${id[0]}`, hash: hashApiKey(PEPPER, keys[i]!) }] })) },
  };
}
