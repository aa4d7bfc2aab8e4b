import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { UsageError, parseInvocation, renderCommandHelp, renderGlobalHelp, type CommandDef } from './args.js';

const serve: CommandDef = {
  name: 'serve',
  summary: 'Serve things',
  usage: '-c FILE [--dry-run]',
  options: {
    config: { type: 'string', short: 'c', valueName: 'FILE', description: 'Config file', required: true },
    'dry-run': { type: 'boolean', description: 'Do not bind' },
  },
};
const keys: CommandDef = { name: 'keys', summary: 'Manage keys', usage: 'SUBCOMMAND [NAME]', options: {}, maxPositionals: 2 };
const table = [serve, keys];

function usageError(argv: string[]): UsageError {
  try {
    parseInvocation(argv, table);
  } catch (e) {
    assert.ok(e instanceof UsageError, String(e));
    return e;
  }
  assert.fail(`expected a usage error for ${argv.join(' ')}`);
}

describe('parseInvocation', () => {
  it('parses a command with options', () => {
    const inv = parseInvocation(['serve', '-c', 'a.yaml', '--dry-run'], table);
    assert.equal(inv.kind, 'run');
    assert.ok(inv.kind === 'run');
    assert.equal(inv.command, serve);
    assert.deepEqual({ ...inv.values }, { config: 'a.yaml', 'dry-run': true });
    assert.deepEqual(inv.positionals, []);
  });

  it('accepts positionals up to the declared maximum (room for `keys generate NAME`)', () => {
    const inv = parseInvocation(['keys', 'generate', 'k1'], table);
    assert.ok(inv.kind === 'run');
    assert.deepEqual(inv.positionals, ['generate', 'k1']);
    assert.equal(usageError(['keys', 'a', 'b', 'c']).message, "unexpected argument 'c'");
  });

  it('recognises help and version', () => {
    assert.deepEqual(parseInvocation(['--help'], table), { kind: 'help' });
    assert.deepEqual(parseInvocation(['-h'], table), { kind: 'help' });
    assert.deepEqual(parseInvocation(['--version'], table), { kind: 'version' });
    assert.deepEqual(parseInvocation(['serve', '--help'], table), { kind: 'help', command: serve });
    assert.deepEqual(parseInvocation(['serve', '--bogus', '-h'], table), { kind: 'help', command: serve }, 'help wins over other mistakes');
    assert.equal(parseInvocation(['keys', '--', '-h'], table).kind, 'run', 'after -- it is a positional');
  });

  it('turns every mistake into a one-line UsageError with a hint', () => {
    const cases: [string[], string, string][] = [
      [[], 'missing command', 'portcullis --help'],
      [['--nope'], "unknown option '--nope'", 'portcullis --help'],
      [['serv'], "unknown command 'serv'; did you mean 'serve'?", 'portcullis --help'],
      [['zzzzzz'], "unknown command 'zzzzzz'", 'portcullis --help'],
      [['serve', '--foo'], "unknown option '--foo'", 'portcullis serve --help'],
      [['serve', '-x'], "unknown option '-x'", 'portcullis serve --help'],
      [['serve', '-c'], "option '--config' needs a value", 'portcullis serve --help'],
      [['serve', '-c', '--dry-run'], "option '--config' needs a value", 'portcullis serve --help'],
      [['serve', '--config='], "option '--config' needs a value", 'portcullis serve --help'],
      [['serve', '-c', 'a', '--dry-run=yes'], "option '--dry-run' does not take a value", 'portcullis serve --help'],
      [['serve', '-c', 'a', 'b'], "unexpected argument 'b'", 'portcullis serve --help'],
      [['serve', '-c', 'a', '--config', 'b'], "option '--config' given more than once", 'portcullis serve --help'],
      [['serve', '--dry-run'], "missing required option '-c, --config FILE'", 'portcullis serve --help'],
    ];
    for (const [argv, message, hint] of cases) {
      const e = usageError(argv);
      assert.equal(e.message, message, argv.join(' '));
      assert.equal(e.hint, hint, argv.join(' '));
      assert.ok(!e.message.includes('\n'));
    }
  });
});

describe('help text', () => {
  it('lists commands and options', () => {
    const g = renderGlobalHelp(table, 'Tagline.');
    assert.match(g, /^Usage: portcullis <command> \[options\]\n\nTagline\.\n/);
    assert.match(g, /^ {2}serve {3}Serve things$/m);
    assert.match(g, /^ {2}keys {4}Manage keys$/m);
    const c = renderCommandHelp(serve);
    assert.match(c, /^Usage: portcullis serve -c FILE \[--dry-run\]\n/);
    assert.match(c, /^ {2}-c, --config FILE {3}Config file \(required\)$/m);
    assert.match(c, /^ {2}--dry-run {11}Do not bind$/m);
    assert.match(c, /^ {2}-h, --help {10}Show this help$/m);
  });
});
