// Reference proxy ("Node ceiling"): node:http front + undici Pool driven through the low-level dispatch
// handler API -- no per-request Readable or stream.pipeline(). Strips hop-by-hop headers and streams the
// body with backpressure (pause on a full socket, resume on 'drain'). Same design as
// ../shared/bench/node/ceiling.js (../shared/research/perf-baseline.md; paths relative to the project root), as ESM.
// Usage: UPSTREAM=http://127.0.0.1:9002 PORT=8084 node bench/reference-proxy.mjs
import http from 'node:http';
import { Pool } from 'undici';

const pool = new Pool(process.env.UPSTREAM, { connections: 64, pipelining: 1, keepAliveTimeout: 60e3 });
const HOP = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade'];

function forward(req, res) {
  const headers = { ...req.headers };
  for (const h of HOP) delete headers[h];
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
  pool.dispatch({ method: req.method, path: req.url, headers, body: hasBody ? req : null }, {
    onRequestStart(ctl) {
      res.on('close', () => { if (!res.writableFinished) ctl.abort(new Error('client gone')); });
    },
    onResponseStart(ctl, statusCode, upHeaders) {
      for (const h of HOP) delete upHeaders[h];
      res.writeHead(statusCode, upHeaders);
      res.on('drain', () => ctl.resume());
    },
    onResponseData(ctl, chunk) { if (!res.write(chunk)) ctl.pause(); },
    onResponseEnd() { res.end(); },
    onResponseError(_ctl, _err) { if (!res.headersSent) res.writeHead(502); res.end(); },
  });
}

const server = http.createServer(forward);
server.listen(Number(process.env.PORT), '127.0.0.1', () => console.log(`listening ${server.address().port}`));
process.on('SIGTERM', () => { server.close(); pool.close().finally(() => process.exit(0)); setTimeout(() => process.exit(0), 1000).unref(); });
