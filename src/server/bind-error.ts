// The message when a listener (a listeners[] entry or the status listener) cannot bind: which one, where,
// why, and which setting moves it.

/** Why a listener could not bind, naming it and the setting to change. */
export function bindError(err: unknown, what: string, address: string, port: number, fix: string): Error {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const where = `${address}:${port}`;
  if (code === 'EADDRINUSE') return Object.assign(new Error(`${what}: cannot listen on ${where}: the address is already in use (another Portcullis, or another program); ${fix}`), { code });
  if (code === 'EACCES') return Object.assign(new Error(`${what}: cannot listen on ${where}: permission denied (ports below 1024 need privileges); ${fix}`), { code });
  if (code === 'EADDRNOTAVAIL') return Object.assign(new Error(`${what}: cannot listen on ${where}: no network interface has this address; ${fix}`), { code });
  return err instanceof Error ? err : new Error(String(err));
}
