#!/usr/bin/env node
// `npm start`: runs the demo upstream and Portcullis on examples/quickstart.yaml, stops both together.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

const root = new URL('..', import.meta.url).pathname;
if (!existsSync(`${root}dist/cli/main.js`)) {
  console.error('portcullis is not built yet: run `npm install` (or `npm run build`) first');
  process.exit(1);
}
const demo = spawn(process.execPath, [`${root}examples/demo-upstream.mjs`], { stdio: 'inherit' });
const gw = spawn(process.execPath, [`${root}dist/cli/main.js`, 'start', '-c', `${root}examples/quickstart.yaml`, ...process.argv.slice(2)], { stdio: 'inherit' });
let stopping = false;
const stop = (sig) => { if (stopping) return; stopping = true; gw.kill(sig); demo.kill(sig); };
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => stop(sig));
process.on('SIGHUP', () => gw.kill('SIGHUP'));
gw.on('exit', (code) => { stop('SIGTERM'); process.exitCode = code ?? 1; });
demo.on('exit', () => { if (!stopping) stop('SIGTERM'); });
