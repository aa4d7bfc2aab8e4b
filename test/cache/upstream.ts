// An upstream whose caching headers are chosen by the request's query: ?cc=<Cache-Control>&vary=<Vary>
// &expires=<+seconds|raw>&cookie=1&age=<n>&size=<bytes>&delay=<ms>&status=<code>. The body says how many
// requests the upstream has answered (so a cached reply is recognisable) and echoes a few request headers.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface CacheUpstream {
  url: string;
  /** requests seen (path + query) */
  seen: string[];
  count(pathPrefix: string): number;
  close(): Promise<void>;
}

export interface CacheBody { n: number; path: string; lang?: string; enc?: string; consumer?: string; method: string }

export async function startCacheUpstream(): Promise<CacheUpstream> {
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      seen.push(req.url ?? '/');
      const q = url.searchParams;
      const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/json', date: new Date().toUTCString() };
      if (q.has('cc')) headers['cache-control'] = q.get('cc')!;
      if (q.has('vary')) headers.vary = q.get('vary')!;
      if (q.has('expires')) {
        const e = q.get('expires')!;
        headers.expires = e.startsWith('+') ? new Date(Date.now() + Number(e.slice(1)) * 1000).toUTCString() : e;
      }
      if (q.has('cookie')) headers['set-cookie'] = 'session=abc; Path=/';
      if (q.has('age')) headers.age = q.get('age')!;
      const size = q.has('size') ? Number(q.get('size')) : 0;
      const body = size > 0
        ? Buffer.alloc(size, 120)
        : Buffer.from(JSON.stringify({
          n: seen.length,
          path: url.pathname,
          method: req.method ?? '',
          lang: req.headers['accept-language'],
          enc: req.headers['accept-encoding'],
          consumer: req.headers['x-consumer'] as string | undefined,
        } satisfies CacheBody));
      const send = () => {
        if (res.destroyed) return;
        // Chunked when asked (no content-length), to exercise the body size bound while streaming.
        if (!q.has('chunked')) headers['content-length'] = body.length;
        res.writeHead(Number(q.get('status') ?? 200), headers);
        res.end(req.method === 'HEAD' ? undefined : body);
      };
      const delay = Number(q.get('delay') ?? 0);
      if (delay > 0) setTimeout(send, delay); else send();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    count: (p) => seen.filter((s) => s.startsWith(p)).length,
    close: () => new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); }),
  };
}
