// A real upstream server for integration tests: echoes what it received as JSON, and has a few
// misbehaving endpoints (slow, reset, error with internals, big, streaming).
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface EchoReply {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  rawHeaders: string[];
  body: string;
  upstream: string;
}

export interface TestUpstream {
  url: string;
  port: number;
  name: string;
  /** requests seen, in order */
  seen: EchoReply[];
  server: http.Server;
  close(): Promise<void>;
}

export async function startUpstream(name = 'up'): Promise<TestUpstream> {
  const seen: EchoReply[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const reply: EchoReply = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body: Buffer.concat(chunks).toString('utf8'),
        upstream: name,
      };
      seen.push(reply);
      const url = req.url ?? '/';
      let m: RegExpMatchArray | null;
      if ((m = url.match(/^\/status\/(\d{3})/))) {
        const body = JSON.stringify({ error: 'stack trace: at secretFunction (/srv/app.js:42)', upstream: name });
        res.writeHead(Number(m[1]), { 'content-type': 'application/json', server: 'Apache/2.4.1 (Unix)', 'x-powered-by': 'PHP/5.2' });
        return res.end(body);
      }
      if ((m = url.match(/^\/slow\/(\d+)/))) {
        const t = setTimeout(() => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(JSON.stringify(reply)); }, Number(m[1]));
        res.on('close', () => clearTimeout(t));
        return;
      }
      if (url.startsWith('/reset')) { req.socket.destroy(); return; }
      if ((m = url.match(/^\/big\/(\d+)/))) {
        const size = Number(m[1]);
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
        return res.end(Buffer.alloc(size, 97));
      }
      res.writeHead(200, {
        'content-type': 'application/json',
        server: 'nginx/1.2.3',
        'x-powered-by': 'Express',
        'x-upstream': name,
        'set-cookie': ['a=1; Path=/', 'b=2; Path=/'],
        connection: 'keep-alive, x-hop',
        'x-hop': 'should-be-dropped',
      });
      res.end(JSON.stringify(reply));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    name,
    seen,
    server,
    close: () => new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); }),
  };
}
