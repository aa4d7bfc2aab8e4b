// Benchmark backend: plain node:http, keep-alive.
//   GET /    -> 101-byte JSON (the same body as the peers baseline)
//   GET /big -> ~100 KB JSON
// Every response also carries `x-backend: bench`, which the portcullis-full row removes (response header rewrite).
// Usage: node bench/backend.mjs PORT   (prints "listening PORT" when ready)
import http from 'node:http';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const SMALL = Buffer.from(
  '{"id":12345,"name":"benchmark-item","status":"ok","tags":["a","b","c"],"price":19.99,"in_stock":true}');

export function makeBig(target = 102_400) {
  const items = [];
  let s = '';
  for (let i = 0; (s = JSON.stringify({ items })).length < target - 120; i++) {
    items.push({ id: i, name: `item-${i}`, status: 'ok', price: i * 1.5, tags: ['x', 'y'] });
  }
  return Buffer.from(JSON.stringify({ count: items.length, items }));
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === realpathSync(process.argv[1])) {
  const BIG = makeBig();
  const port = Number(process.argv[2] ?? process.env.PORT ?? 9002);
  const server = http.createServer((req, res) => {
    const body = req.url === '/big' ? BIG : SMALL;
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length, 'x-backend': 'bench' });
    res.end(body);
    req.resume(); // drain any request body
  });
  // Node's default 5 s idle timeout would make the proxies' upstream pools reconnect between runs.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.maxRequestsPerSocket = 0;
  server.listen(port, '127.0.0.1', () => console.log(`listening ${server.address().port}`));
  process.on('SIGTERM', () => process.exit(0));
}
