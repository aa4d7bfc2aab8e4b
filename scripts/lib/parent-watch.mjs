// Preloaded (`node --import`) into the processes that `npm start` (scripts/quickstart.mjs) runs: when the
// parent that started this process goes away without stopping it (killed with SIGKILL, crashed), its IPC
// channel closes; this process then stops as if sent SIGTERM (a gateway drains), and exits at the latest
// 45 s later. Acts only when the parent asked for it (PORTCULLIS_PARENT_WATCH=1 and an IPC channel); the
// variable is removed at once so processes this one forks (cluster workers) do not inherit it.
if (process.env.PORTCULLIS_PARENT_WATCH === '1') {
  delete process.env.PORTCULLIS_PARENT_WATCH;
  if (typeof process.send === 'function') {
    process.on('disconnect', () => {
      setTimeout(() => process.exit(1), 45_000).unref();
      process.kill(process.pid, 'SIGTERM');
    });
    // the channel alone must not keep this process alive
    process.channel?.unref();
  }
}
