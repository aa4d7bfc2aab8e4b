#!/usr/bin/env node
// `npm start`: runs the demo upstream and Portcullis on examples/quickstart.yaml, stops both together.
//
// Neither child outlives this script, whatever stops it:
// - each child runs in its own process group (so a gateway's cluster workers go with it), and a Ctrl-C
//   to the terminal's process group reaches only this script, which stops the children in order;
// - SIGINT / SIGTERM (also from npm, which forwards them): SIGTERM to each child, wait until both have
//   exited (the gateway drains in-flight requests), SIGKILL to any process group left after 40 s;
//   a second SIGINT / SIGTERM kills the groups at once;
// - this script exiting any other way (a crash): SIGTERM to each child from the `exit` handler;
// - this script killed outright (SIGKILL): the children are started with an IPC channel and
//   scripts/lib/parent-watch.mjs, which stops them when the channel closes;
// - under `npm start`, npm dying (even by SIGKILL): noticed within a second, stop as above;
// - one child exiting on its own (e.g. the port is taken): the other is stopped, exit with its code.
// SIGHUP is forwarded to the gateway (configuration reload).
//
// Environment (for tests and tinkering): PORTCULLIS_QUICKSTART_CONFIG (another configuration file),
// PORT (demo upstream port), PORTCULLIS_QUICKSTART_FROM_SRC=1 (run src/ through tsx instead of dist/).
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const fromSrc = process.env.PORTCULLIS_QUICKSTART_FROM_SRC === '1';
const config = process.env.PORTCULLIS_QUICKSTART_CONFIG ?? `${root}examples/quickstart.yaml`;
if (!fromSrc && !existsSync(`${root}dist/cli/main.js`)) {
  console.error('portcullis is not built yet: run `npm install` (or `npm run build`) first');
  process.exit(1);
}
const cli = fromSrc ? ['--import', import.meta.resolve('tsx'), `${root}src/cli/main.ts`] : [`${root}dist/cli/main.js`];
const preload = ['--import', pathToFileURL(`${root}scripts/lib/parent-watch.mjs`).href];
const FORCE_AFTER_MS = 40_000;

const children = [];
function run(name, args) {
  const child = spawn(process.execPath, [...preload, ...args], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    detached: true,
    env: { ...process.env, PORTCULLIS_PARENT_WATCH: '1' },
  });
  const c = { name, child, done: false };
  c.exited = new Promise((resolve) => child.once('exit', (code, signal) => { c.done = true; resolve({ code, signal }); }));
  child.on('error', (err) => { console.error(`quickstart: cannot start the ${name}: ${err.message}`); stop('SIGTERM', 1); });
  children.push(c);
  return c;
}

/** SIGTERM/SIGINT/SIGKILL to a child's leader, or its whole process group. */
function signal(c, sig, group = false) {
  if (c.child.pid === undefined) return;
  try {
    if (group) process.kill(-c.child.pid, sig);
    else if (!c.done) c.child.kill(sig);
  } catch { /* already gone */ }
}

let stopping;
function stop(sig, code) {
  if (stopping !== undefined) return stopping;
  if (code !== undefined) process.exitCode = code;
  for (const c of children) signal(c, sig);
  const force = setTimeout(() => {
    console.error(`quickstart: still running ${FORCE_AFTER_MS / 1000} s after ${sig}; killing`);
    for (const c of children) signal(c, 'SIGKILL', true);
  }, FORCE_AFTER_MS);
  stopping = Promise.all(children.map((c) => c.exited)).then(() => {
    clearTimeout(force);
    for (const c of children) signal(c, 'SIGKILL', true); // anything left in the groups (orphaned workers)
    process.exit();
  });
  return stopping;
}

const demo = run('demo upstream', [`${root}examples/demo-upstream.mjs`]);
const gw = run('gateway', [...cli, 'start', '-c', config, ...process.argv.slice(2)]);

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    if (stopping === undefined) { void stop(sig); return; }
    for (const c of children) signal(c, 'SIGKILL', true); // asked twice: no more waiting
  });
}
process.on('SIGHUP', () => signal(gw, 'SIGHUP'));
process.on('exit', () => { for (const c of children) signal(c, 'SIGTERM'); });
gw.exited.then(({ code }) => void stop('SIGTERM', stopping === undefined ? (code ?? 1) : undefined));
demo.exited.then(({ code }) => void stop('SIGTERM', stopping === undefined ? (code === 0 ? 1 : code ?? 1) : undefined));

// Under `npm start`, npm (or the shell between npm and this script) died: nobody can stop this script
// any more, so stop. Only under npm: started by hand in the background, losing the parent is intended.
// npm runs scripts through `sh -c`, which stays alive when npm dies: watch npm itself too (on Linux the
// parent's parent is read from /proc).
if (process.env.npm_lifecycle_event !== undefined) {
  const parent = process.ppid;
  const watched = [parent];
  try {
    const stat = readFileSync(`/proc/${parent}/stat`, 'utf8');
    const grandparent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (grandparent > 1) watched.push(grandparent);
  } catch { /* no /proc: the parent alone */ }
  const alive = (pid) => { try { process.kill(pid, 0); return true; } catch (e) { return e.code === 'EPERM'; } };
  setInterval(() => { if (process.ppid !== parent || !watched.every(alive)) void stop('SIGTERM'); }, 1000).unref();
}
