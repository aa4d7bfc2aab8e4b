// Last-resort clean-up for a test file's process: synchronous tasks run when the process exits, whatever
// the reason (tests done, uncaught error, process.exit), and when it is told to stop: on SIGTERM (what
// Node's test runner sends a test file that exceeds --test-timeout), SIGINT (Ctrl-C) or SIGHUP the
// process exits with 128 + the signal number, which runs the same tasks.
import { constants } from 'node:os';

const tasks = new Set<() => void>();

function runAll(): void {
  for (const task of [...tasks]) {
    try { task(); } catch { /* best effort: the other tasks still run */ }
  }
}

process.on('exit', runAll);
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
  const onSignal = (): void => {
    runAll();
    process.off(sig, onSignal);
    // exit as the signal would have, unless something else handles it
    if (process.listenerCount(sig) === 0) process.exit(128 + constants.signals[sig]);
  };
  process.on(sig, onSignal);
}

/** Registers a synchronous clean-up task; returns a function that unregisters it. */
export function onExitSync(task: () => void): () => void {
  tasks.add(task);
  return () => { tasks.delete(task); };
}
