// A tiny demo backend for the quickstart: JSON echo on 127.0.0.1:9000 (PORT to change).
import http from 'node:http';

const port = Number(process.env.PORT ?? 9000);
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    if (req.url === '/healthz') { res.writeHead(200, { 'content-type': 'text/plain' }); return res.end('ok'); }
    const body = JSON.stringify({
      service: 'demo-upstream',
      method: req.method,
      path: req.url,
      headers: req.headers,
      body: Buffer.concat(chunks).toString('utf8') || undefined,
    }, null, 2);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(body + '\n');
  });
});
server.listen(port, '127.0.0.1', () => console.error(`demo upstream on http://127.0.0.1:${port}`));
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => server.close(() => process.exit(0)));
