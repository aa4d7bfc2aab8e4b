// Writes schema/portcullis.schema.json from GatewayConfigSchema (the published JSON Schema, used by
// editors through `# yaml-language-server: $schema=...`).
//   npm run schema                       regenerate
//   tsx scripts/gen-schema.ts --check    exit 1 if the committed file is out of date (CI)
//   --out FILE                           another target file (tests)
import { readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { GatewayConfigSchema } from '../src/config/schema.js';

export const SCHEMA_FILE: string = fileURLToPath(new URL('../schema/portcullis.schema.json', import.meta.url));

/** The exact text of the published schema. TypeBox's symbol keys are dropped by JSON.stringify. */
export function renderSchema(): string {
  return `${JSON.stringify(GatewayConfigSchema, null, 2)}\n`;
}

function main(argv: string[]): number {
  let values: { check?: boolean; out?: string };
  try {
    ({ values } = parseArgs({ args: argv, options: { check: { type: 'boolean' }, out: { type: 'string' } }, strict: true }));
  } catch (e) {
    process.stderr.write(`gen-schema: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}\n`);
    return 2;
  }
  const file = values.out ?? SCHEMA_FILE;
  const text = renderSchema();
  if (values.check) {
    let current: string | undefined;
    try { current = readFileSync(file, 'utf8'); } catch { current = undefined; }
    if (current === text) {
      process.stdout.write(`${file} is up to date\n`);
      return 0;
    }
    process.stderr.write(`${file} is ${current === undefined ? 'missing' : 'out of date'}: run 'npm run schema' and commit the result\n`);
    return 1;
  }
  writeFileSync(file, text);
  process.stdout.write(`wrote ${file}\n`);
  return 0;
}

const invokedDirectly = ((): boolean => {
  const script = process.argv[1];
  if (script === undefined) return false;
  try { return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url)); } catch { return false; }
})();
if (invokedDirectly) process.exitCode = main(process.argv.slice(2));
