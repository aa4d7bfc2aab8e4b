// Command-line parsing for the `portcullis` bin: a table of commands, each with strict options
// (node:util parseArgs), generated help text, and usage errors that become one line + exit 2.
import { parseArgs } from 'node:util';
import { suggest } from '../config/issues.js';

export const PROGRAM = 'portcullis';

export interface OptionDef {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  readonly description: string;
  /** placeholder shown in help for string options, e.g. FILE */
  readonly valueName?: string;
  readonly required?: boolean;
}

export interface CommandDef {
  readonly name: string;
  /** one line for the command list */
  readonly summary: string;
  /** what follows `portcullis <name>` in the usage line, e.g. `-c FILE` */
  readonly usage: string;
  /** extra paragraph(s) for `portcullis <name> --help` */
  readonly description?: string;
  readonly options: Readonly<Record<string, OptionDef>>;
  /** how many positional arguments are accepted (default 0) */
  readonly maxPositionals?: number;
}

export type OptionValues = Readonly<Record<string, string | boolean | undefined>>;

export type Invocation =
  | { readonly kind: 'help'; readonly command?: CommandDef }
  | { readonly kind: 'version' }
  | { readonly kind: 'run'; readonly command: CommandDef; readonly values: OptionValues; readonly positionals: readonly string[] };

/** A mistake in how the program was called: printed as one line, exit status 2. */
export class UsageError extends Error {
  /** shown as `(see '<hint>')` */
  readonly hint: string | undefined;
  constructor(message: string, hint?: string) {
    super(message);
    this.name = 'UsageError';
    this.hint = hint;
  }
}

const HELP_FLAGS = new Set(['-h', '--help']);

const errorCode = (e: unknown): string | undefined =>
  typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string' ? e.code : undefined;

/** parseArgs' multi-line messages → one short line. */
function translateParseError(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const quoted = /'([^']+)'/.exec(msg)?.[1];
  const long = /--[A-Za-z0-9][A-Za-z0-9-]*/.exec(msg)?.[0];
  switch (errorCode(e)) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown option '${quoted ?? msg}'`;
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument '${quoted ?? msg}'`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      if (/does not take an argument/.test(msg)) return `option '${long ?? quoted ?? '?'}' does not take a value`;
      return `option '${long ?? quoted ?? '?'}' needs a value`;
    default:
      return (msg.split('\n')[0] ?? msg).replace(/^./, (c) => c.toLowerCase());
  }
}

function flagLabel(name: string, o: OptionDef): string {
  const value = o.type === 'string' ? ` ${o.valueName ?? 'VALUE'}` : '';
  return `${o.short ? `-${o.short}, ` : ''}--${name}${value}`;
}

/**
 * Turns argv (without node and script) into what to do. Throws UsageError for anything malformed:
 * missing/unknown command, unknown option, missing value, repeated option, missing required option.
 */
export function parseInvocation(argv: readonly string[], commands: readonly CommandDef[]): Invocation {
  const globalHint = `${PROGRAM} --help`;
  const [first, ...rest] = argv;
  if (first === undefined) throw new UsageError('missing command', globalHint);
  if (HELP_FLAGS.has(first)) return { kind: 'help' };
  if (first === '--version') return { kind: 'version' };
  if (first.startsWith('-')) throw new UsageError(`unknown option '${first}'`, globalHint);
  const command = commands.find((c) => c.name === first);
  if (!command) {
    const s = suggest(first, commands.map((c) => c.name));
    throw new UsageError(`unknown command '${first}'${s ? `; did you mean '${s}'?` : ''}`, globalHint);
  }
  const hint = `${PROGRAM} ${command.name} --help`;
  const endOfOptions = rest.indexOf('--');
  if ((endOfOptions < 0 ? rest : rest.slice(0, endOfOptions)).some((a) => HELP_FLAGS.has(a))) return { kind: 'help', command };

  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const [name, o] of Object.entries(command.options)) options[name] = o.short ? { type: o.type, short: o.short } : { type: o.type };
  let parsed: ReturnType<typeof parseArgs<{ options: typeof options; tokens: true; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: [...rest], options, strict: true, allowPositionals: (command.maxPositionals ?? 0) > 0, tokens: true });
  } catch (e) {
    throw new UsageError(translateParseError(e), hint);
  }
  const seen = new Set<string>();
  for (const t of parsed.tokens) {
    if (t.kind !== 'option') continue;
    if (seen.has(t.name)) throw new UsageError(`option '--${t.name}' given more than once`, hint);
    seen.add(t.name);
  }
  if (parsed.positionals.length > (command.maxPositionals ?? 0)) {
    throw new UsageError(`unexpected argument '${parsed.positionals[command.maxPositionals ?? 0] ?? ''}'`, hint);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  for (const [name, o] of Object.entries(command.options)) {
    const v = values[name];
    if (o.type === 'string' && v === '') throw new UsageError(`option '--${name}' needs a value`, hint);
    if (o.required && v === undefined) throw new UsageError(`missing required option '${flagLabel(name, o)}'`, hint);
  }
  return { kind: 'run', command, values, positionals: parsed.positionals };
}

function table(rows: readonly (readonly [string, string])[]): string {
  const width = Math.max(0, ...rows.map(([a]) => a.length));
  return rows.map(([a, b]) => `  ${a.padEnd(width)}   ${b}`).join('\n');
}

export function renderGlobalHelp(commands: readonly CommandDef[], tagline: string): string {
  return [
    `Usage: ${PROGRAM} <command> [options]`,
    '',
    tagline,
    '',
    'Commands:',
    table(commands.map((c) => [c.name, c.summary])),
    '',
    'Options:',
    table([['-h, --help', 'Show help'], ['--version', 'Print the version']]),
    '',
    `Run '${PROGRAM} <command> --help' for the options of a command.`,
    '',
  ].join('\n');
}

export function renderCommandHelp(c: CommandDef): string {
  const rows: [string, string][] = Object.entries(c.options).map(([name, o]) => [flagLabel(name, o), `${o.description}${o.required ? ' (required)' : ''}`]);
  rows.push(['-h, --help', 'Show this help']);
  return [
    `Usage: ${PROGRAM} ${c.name}${c.usage ? ` ${c.usage}` : ''}`,
    '',
    c.summary,
    ...(c.description ? ['', c.description] : []),
    '',
    'Options:',
    table(rows),
    '',
  ].join('\n');
}
