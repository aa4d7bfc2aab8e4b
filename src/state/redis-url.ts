// redis:// and rediss:// URLs of Redis Cluster seed nodes, parsed once for the store and for config checks.

export interface RedisNodeAddress {
  readonly host: string;
  readonly port: number;
  readonly username?: string;
  readonly password?: string;
  readonly tls: boolean;
}

/** undefined when `url` is not a usable redis:// URL (never echo it in an error: it may carry a password) */
export function parseRedisNodeUrl(url: string): RedisNodeAddress | undefined {
  try {
    const u = new URL(url);
    if ((u.protocol !== 'redis:' && u.protocol !== 'rediss:') || u.hostname === '') return undefined;
    const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
    return {
      host,
      port: u.port === '' ? 6379 : Number(u.port),
      ...(u.username !== '' ? { username: decodeURIComponent(u.username) } : {}),
      ...(u.password !== '' ? { password: decodeURIComponent(u.password) } : {}),
      tls: u.protocol === 'rediss:',
    };
  } catch {
    return undefined;
  }
}
