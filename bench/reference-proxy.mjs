// Reference proxy ("Node ceiling"): node:http front + undici Pool driven through the low-level dispatch
// handler API -- no per-request Readable or stream.pipeline(). Strips hop-by-hop headers and streams the
// body with backpressure (pause on a full socket, resume on 'drain'). Same design as
// ../shared/bench/node/ceiling.js (../shared/research/perf-baseline.md; paths relative to the project root), as ESM.
// Usage: UPSTREAM=http://127.0.0.1:9002 PORT=8084 node bench/reference-proxy.mjs
//
// TLS front ends (the TLS rows): PROTO=https (node:https, HTTP/1.1) or PROTO=h2 (node:http2 secure server with
// allowHTTP1, compatibility API), with TLS_CERT / TLS_KEY (PEM files). TLS 1.3 only, like Portcullis's default.
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import { Pool } from 'undici';

const pool = new Pool(process.env.UPSTREAM, { connections: 64, pipelining: 1, keepAliveTimeout: 60e3 });
const HOP = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade'];
const PROTO = process.env.PROTO ?? 'http';

function forward(req, res) {
  let headers = { ...req.headers };
  for (const h of HOP) delete headers[h];
  if (req.httpVersionMajor === 2) {
    // HTTP/2 (compatibility API): drop the pseudo-headers, :authority becomes Host.
    const h1 = {};
    for (const k in headers) if (k.charCodeAt(0) !== 58 /* ':' */) h1[k] = headers[k];
    if (h1.host === undefined && headers[':authority'] !== undefined) h1.host = headers[':authority'];
    headers = h1;
  }
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
  let gone = false;
  pool.dispatch({ method: req.method, path: req.url, headers, body: hasBody ? req : null }, {
    onRequestStart(ctl) {
      res.on('close', () => { if (!(res.writableFinished ?? res.writableEnded)) { gone = true; ctl.abort(new Error('client gone')); } });
    },
    onResponseStart(ctl, statusCode, upHeaders) {
      if (gone) return;
      for (const h of HOP) delete upHeaders[h];
      res.writeHead(statusCode, upHeaders);
      res.on('drain', () => ctl.resume());
    },
    onResponseData(ctl, chunk) {
      if (gone) return;
      // An HTTP/2 stream can be closed (the client reset it, or its session ended) without this request
      // having seen 'close' yet: write() then returns false and no 'drain' follows, so pausing would hold
      // the pool connection for ever. Abort instead.
      if (res.write(chunk)) return;
      if (res.stream?.destroyed ?? res.destroyed) { gone = true; ctl.abort(new Error('client gone')); } else ctl.pause();
    },
    onResponseEnd() { if (!gone) res.end(); },
    // An HTTP/2 stream the client reset must not be written to (the compatibility API throws).
    onResponseError(_ctl, _err) { if (gone) return; if (!res.headersSent) res.writeHead(502); res.end(); },
  });
}

function createServer() {
  if (PROTO === 'http') return http.createServer(forward);
  // Portcullis's TLS 1.3 defaults (src/tls/policy.ts, manager.ts): its suite order, and the client's preference
  // decides. Left to Node's defaults the h2 server chose AES-256 where Portcullis chose AES-128 for h2load.
  const tls = {
    cert: fs.readFileSync(process.env.TLS_CERT), key: fs.readFileSync(process.env.TLS_KEY), minVersion: 'TLSv1.3',
    ciphers: 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256', honorCipherOrder: false,
  };
  if (PROTO === 'https') return https.createServer(tls, forward);
  if (PROTO === 'h2') return http2.createSecureServer({ ...tls, allowHTTP1: true }, forward);
  throw new Error(`PROTO=${PROTO}: expected http, https or h2`);
}

const server = createServer();
server.listen(Number(process.env.PORT), '127.0.0.1', () => console.log(`listening ${server.address().port} (${PROTO})`));
process.on('SIGTERM', () => { server.close(); pool.close().finally(() => process.exit(0)); setTimeout(() => process.exit(0), 1000).unref(); });
