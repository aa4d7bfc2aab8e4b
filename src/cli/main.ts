#!/usr/bin/env node
// The `portcullis` command. Commands live in one table; add new ones (keys, certs, ...) there.
// Exit status: 0 ok, 1 failure (invalid config, runtime error), 2 usage error (including a -c FILE that does
// not exist or is a directory; README.md says the same).
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import cluster from 'node:cluster';
import { formatIssue, type ConfigIssue } from '../config/issues.js';
import type { GatewayConfig } from '../config/schema.js';
import { VERSION } from '../version.js';
import { PROGRAM, UsageError, parseInvocation, renderCommandHelp, renderGlobalHelp, type CommandDef, type OptionDef, type OptionValues } from './args.js';

interface Io {
  out(line: string): void;
  err(line: string): void;
}

interface Command extends CommandDef {
  run(values: OptionValues, positionals: readonly string[], io: Io): Promise<number>;
}

const configOption: OptionDef = { type: 'string', short: 'c', valueName: 'FILE', description: 'Configuration file (YAML or JSON)', required: true };

/** A path that does not exist (or is a directory) is a usage error, not an invalid configuration. */
async function requireConfigFile(file: string, command: string): Promise<void> {
  let isDir: boolean;
  try {
    isDir = (await stat(file)).isDirectory();
  } catch (e) {
    const code = typeof e === 'object' && e !== null && 'code' in e ? e.code : undefined;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new UsageError(`config file not found: ${file}`, `${PROGRAM} ${command} --help`);
    return; // other problems (permissions, ...) are reported by the loader
  }
  if (isDir) throw new UsageError(`config file is a directory: ${file}`, `${PROGRAM} ${command} --help`);
}

function printIssues(io: Io, errors: readonly ConfigIssue[], warnings: readonly ConfigIssue[]): void {
  for (const i of errors) io.err(formatIssue(i));
  for (const i of warnings) io.err(formatIssue(i));
}

const count = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/** Loads and validates the file for `start` and `validate`; prints every issue. Null when it has errors. */
async function loadReported(file: string, command: string, io: Io): Promise<GatewayConfig | null> {
  await requireConfigFile(file, command);
  const { loadConfigFile } = await import('../config/load.js');
  const result = await loadConfigFile(file);
  printIssues(io, result.ok ? [] : result.errors, result.warnings);
  if (!result.ok) {
    if (command === 'validate') io.err(`${file}: ${count(result.errors.length, 'error')}${result.warnings.length > 0 ? `, ${count(result.warnings.length, 'warning')}` : ''}`);
    return null;
  }
  return result.config;
}

const commands: readonly Command[] = [
  {
    name: 'start',
    summary: 'Start the gateway',
    usage: '-c FILE',
    description: 'Loads and validates the configuration; on any error prints every problem and exits with status 1.',
    options: { config: configOption },
    async run(values, _positionals, io) {
      // A cluster worker gets its validated configuration from the primary: it never loads the config
      // loader (ajv, yaml), which keeps its heap, and so its major GC pauses, small.
      if (cluster.isWorker) {
        const { runWorker } = await import('../gateway/worker.js');
        await runWorker();
        return 0;
      }
      const file = String(values.config);
      const config = await loadReported(file, 'start', io);
      if (config === null) return 1;
      // imported lazily: `validate` and `version` never load the runtime
      const { runGateway } = await import('../gateway/run.js');
      await runGateway({ configPath: resolve(file), config });
      return 0;
    },
  },
  {
    name: 'validate',
    summary: 'Check a configuration file and report every problem',
    usage: '-c FILE',
    description: 'Prints each error and warning as FILE:LINE:COLUMN: PATH: MESSAGE. Exit status 1 if there is any error, 0 otherwise; 2 for a usage error, such as a FILE that does not exist.',
    options: { config: configOption },
    async run(values, _positionals, io) {
      const file = String(values.config);
      const c = await loadReported(file, 'validate', io);
      if (c === null) return 1;
      io.out(`ok: ${file} (${c.routes.length} routes, ${Object.keys(c.upstreams ?? {}).length} upstreams, ${c.listeners.length} listeners)`);
      return 0;
    },
  },
  {
    name: 'certs',
    summary: 'Create development TLS certificates',
    usage: 'dev [--out DIR] [--names NAMES] [--force]',
    description: 'certs dev writes a development CA, a server certificate for NAMES (default localhost,127.0.0.1) and a client certificate into DIR (default ./certs) with the openssl command, and prints a listener configuration. Existing files are not overwritten without --force. Not for production.',
    options: {
      out: { type: 'string', valueName: 'DIR', description: 'Output directory (default ./certs)' },
      names: { type: 'string', valueName: 'NAMES', description: 'Comma-separated DNS names and IP addresses for the server certificate' },
      force: { type: 'boolean', description: 'Overwrite existing files' },
    },
    maxPositionals: 1,
    async run(values, positionals, io) {
      const { runCerts } = await import('./certs.js');
      return runCerts(values, positionals, io);
    },
  },
  {
    name: 'keys',
    summary: 'Create, list, rotate and revoke API keys in the key store',
    usage: 'create|import|list|show|rotate|revoke|enable|disable|hash|generate [KEY_ID] [options]',
    description: [
      'The store is identity.keyStore of -c FILE, or --store sqlite:PATH | postgres://USER@HOST/DB[?schema=NAME]. The pepper is identity.pepper of -c FILE or the PORTCULLIS_KEY_PEPPER environment variable (create, import, rotate, hash, generate).',
      '',
      '  keys create --consumer ID [--scopes a,b] [--cidr 10.0.0.0/8,::1] [--origin https://app.example] [--expires 30d|RFC3339] [--disabled]',
      '  keys import --consumer ID [--file KEY_FILE] [create\'s options] < key.txt   (a key from another gateway;',
      '                                     read from stdin or --file, never argv; weak keys are refused)',
      '  keys list [--consumer ID]          keys show KEY_ID',
      '  keys rotate KEY_ID [--overlap 24h] [--expires ...]   (the old key keeps working for the overlap)',
      '  keys revoke KEY_ID                 keys enable KEY_ID | keys disable KEY_ID',
      '  keys hash < key.txt                (the hash of a key, for identity.consumers[].apiKeys)',
      '  keys generate                      (a key and its hash for the config file; no store)',
      '',
      'A new key is printed once and cannot be shown again. No command prints stored hashes.',
    ].join('\n'),
    options: {
      config: { type: 'string', short: 'c', valueName: 'FILE', description: 'Configuration file with identity.keyStore (and identity.pepper)' },
      store: { type: 'string', valueName: 'STORE', description: 'sqlite:PATH or postgres://... (instead of -c)' },
      consumer: { type: 'string', valueName: 'ID', description: 'Consumer the key belongs to (created if unknown); filter for list' },
      scopes: { type: 'string', valueName: 'LIST', description: 'Comma-separated scopes of the key (default: the consumer\'s)' },
      cidr: { type: 'string', valueName: 'LIST', description: 'Comma-separated client addresses/CIDR blocks the key works from' },
      origin: { type: 'string', valueName: 'LIST', description: 'Comma-separated browser origins allowed to use the key' },
      expires: { type: 'string', valueName: 'WHEN', description: 'Expiry: a duration (30d, 12h) or an RFC 3339 time' },
      disabled: { type: 'boolean', description: 'Create the key disabled' },
      overlap: { type: 'string', valueName: 'DURATION', description: 'rotate: how long the old key keeps working (default 24h)' },
      file: { type: 'string', valueName: 'FILE', description: 'import: read the key from FILE instead of stdin' },
      json: { type: 'boolean', description: 'JSON output' },
    },
    maxPositionals: 2,
    async run(values, positionals, io) {
      const { runKeys } = await import('./keys.js');
      return runKeys(values, positionals, io);
    },
  },
  {
    name: 'consumers',
    summary: 'Create, list, show, update and delete consumers in the key store',
    usage: 'create|update|list|show|delete [ID] [options]',
    description: [
      'Same store options as `keys`. Deleting a consumer revokes all of its keys. A consumer in the config file wins over a store consumer with the same id.',
      '',
      '  consumers create ID [--roles a,b] [--scopes a,b] [--metadata plan=gold,tier=2]',
      '  consumers update ID [--roles ...] [--scopes ...] [--metadata ...]   (replaces the given fields)',
      '  consumers list | consumers show ID | consumers delete ID',
    ].join('\n'),
    options: {
      config: { type: 'string', short: 'c', valueName: 'FILE', description: 'Configuration file with identity.keyStore' },
      store: { type: 'string', valueName: 'STORE', description: 'sqlite:PATH or postgres://... (instead of -c)' },
      roles: { type: 'string', valueName: 'LIST', description: 'Comma-separated roles' },
      scopes: { type: 'string', valueName: 'LIST', description: 'Comma-separated scopes' },
      metadata: { type: 'string', valueName: 'PAIRS', description: 'Comma-separated key=value pairs (plan, tier, ...)' },
      json: { type: 'boolean', description: 'JSON output' },
    },
    maxPositionals: 2,
    async run(values, positionals, io) {
      const { runConsumers } = await import('./keys.js');
      return runConsumers(values, positionals, io);
    },
  },
  {
    name: 'cache',
    summary: 'Purge cached responses in a running gateway',
    usage: 'purge --prefix PREFIX | --key KEY (-c FILE | --url URL)',
    description: [
      'Calls POST /admin/cache/purge on the status listener of -c FILE (server.status, default 127.0.0.1:9901) or of --url. In cluster mode every worker purges.',
      'The admin token (Authorization: Bearer) is read from --token-file FILE, else (with -c) server.status.adminToken, else $PORTCULLIS_ADMIN_TOKEN.',
      '',
      '  cache purge --prefix /products -c portcullis.yaml   (every cached response whose key starts with /products)',
      '  cache purge --key "/products/1 api.example.com products *" --url http://127.0.0.1:9901',
      '',
      'Key format: PATH[?QUERY] HOST ROUTE_ID [HEADER=VALUE ...] SCOPE (see docs/caching.md).',
    ].join('\n'),
    options: {
      config: { type: 'string', short: 'c', valueName: 'FILE', description: 'Configuration file (for the status listener address)' },
      url: { type: 'string', valueName: 'URL', description: 'Status listener base URL (instead of -c)' },
      'token-file': { type: 'string', valueName: 'FILE', description: 'File holding the admin token (default: server.status.adminToken from -c, else $PORTCULLIS_ADMIN_TOKEN)' },
      prefix: { type: 'string', valueName: 'PREFIX', description: 'Purge every key starting with PREFIX (e.g. a path prefix)' },
      key: { type: 'string', valueName: 'KEY', description: 'Purge one exact key (all its Vary variants)' },
      json: { type: 'boolean', description: 'JSON output' },
    },
    maxPositionals: 1,
    async run(values, positionals, io) {
      const { runCache } = await import('./cache.js');
      return runCache(values, positionals, io);
    },
  },
  {
    name: 'version',
    summary: 'Print the version',
    usage: '',
    options: {},
    async run(_values, _positionals, io) {
      io.out(`${PROGRAM} ${VERSION}`);
      return 0;
    },
  },
  {
    name: 'help',
    summary: 'Show help for a command',
    usage: '[COMMAND]',
    options: {},
    maxPositionals: 1,
    async run(_values, positionals, io) {
      const name = positionals[0];
      if (name === undefined) { io.out(globalHelp()); return 0; }
      const c = commands.find((x) => x.name === name);
      if (!c) throw new UsageError(`unknown command '${name}'`, `${PROGRAM} --help`);
      io.out(renderCommandHelp(c));
      return 0;
    },
  },
];

const globalHelp = (): string => renderGlobalHelp(commands, 'Portcullis, a security-first API gateway.');

async function main(argv: readonly string[], io: Io): Promise<number> {
  try {
    const inv = parseInvocation(argv, commands);
    switch (inv.kind) {
      case 'help':
        io.out(inv.command ? renderCommandHelp(inv.command) : globalHelp());
        return 0;
      case 'version':
        io.out(`${PROGRAM} ${VERSION}`);
        return 0;
      case 'run': {
        const command = commands.find((c) => c.name === inv.command.name);
        if (!command) throw new Error(`command '${inv.command.name}' has no implementation`);
        return await command.run(inv.values, inv.positionals, io);
      }
    }
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`${PROGRAM}: ${e.message}${e.hint ? ` (see '${e.hint}')` : ''}`);
      return 2;
    }
    io.err(`${PROGRAM}: ${e instanceof Error ? e.message : String(e)}`);
    if (process.env.PORTCULLIS_DEBUG && e instanceof Error && e.stack) io.err(e.stack);
    return 1;
  }
}

// `portcullis … | head` closes the pipe early: that is the reader's choice, not an error worth a stack trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => { if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0); else throw e; });

const io: Io = {
  out: (line) => { process.stdout.write(line.endsWith('\n') ? line : `${line}\n`); },
  err: (line) => { process.stderr.write(line.endsWith('\n') ? line : `${line}\n`); },
};

const finish = (code: number): void => {
  process.exitCode = code;
  // on failure do not wait for whatever the gateway may have left open; exit once stderr is flushed
  if (code !== 0) process.stderr.write('', () => process.exit(code));
};

main(process.argv.slice(2), io).then(finish, (e: unknown) => {
  io.err(`${PROGRAM}: ${e instanceof Error ? e.message : String(e)}`);
  finish(1);
});
