#!/usr/bin/env node
// `npm run bench`: Portcullis against a reference Node proxy, behind one node:http backend, measured with wrk.
// Method: ../shared/research/perf-baseline.md, relative to the project root (layout "split": CPU0 = wrk + backend, CPU1 = system under test).
// See bench/README.md for how to read the output. Plain ESM JavaScript: no build step for the harness itself.
//
// Env knobs: ROUNDS [3]  DURATION [10] (s)  WARMUP [2] (s)  CONNECTIONS [50]  SYSTEMS [all] (comma list)
//            BENCH_PIN [1]  BENCH_NO_BUILD [0]  BENCH_START_TIMEOUT [20] (s)  BENCH_QUIET_WAIT [30] (s)
//            BENCH_MAX_TRIES [3]  BENCH_KEEP_TMP [0]  BENCH_ENFORCE_BARS [0]  BENCH_REDIS_URL [a private redis-server on CPU0]
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.dirname(BENCH_DIR);
const CLI = path.join(ROOT, 'dist/cli/main.js');

const envInt = (name, def) => {
  const v = process.env[name];
  if (v === undefined || v === '') return def;
  const n = Number(String(v).replace(/s$/, ''));
  if (!Number.isFinite(n) || n < 0) die(`${name}=${v} is not a number`);
  return n;
};
const ROUNDS = envInt('ROUNDS', 3);
const DURATION = envInt('DURATION', 10);
const WARMUP = envInt('WARMUP', 2);
const CONNECTIONS = envInt('CONNECTIONS', 50);
const START_TIMEOUT_MS = envInt('BENCH_START_TIMEOUT', 20) * 1000;
const QUIET_WAIT_S = envInt('BENCH_QUIET_WAIT', 30);
const FOREIGN_MAX = 5; // % of one core used by processes we did not start => the run is repeated, or marked †
const MAX_TRIES = Math.max(1, envInt('BENCH_MAX_TRIES', 3));
const ONLY = (process.env.SYSTEMS ?? '').split(',').map((s) => s.trim()).filter(Boolean);

// The request every system gets (plus a row's extra headers).
const BASE_HEADERS = { Host: 'bench.local', Accept: 'application/json' };

// ================================================================ systems under test
// One row per system. Add a row to benchmark another configuration (JWT, API key, rate limit, ...):
//   name       unique id (SYSTEMS=name filters)
//   config     (ctx) => Portcullis config object; it is written as YAML and started with
//              `node dist/cli/main.js start -c FILE`. ctx = { port, upstream, dir, file(name) }
//   command    (ctx) => { args: [...], env: {...} } -- alternative to `config` for non-Portcullis systems
//   headers    extra request headers for the sanity check and wrk, e.g. { Authorization: 'Bearer ...' }
//   wrkScript  optional Lua source for wrk -s (e.g. to vary tokens / paths)
//   verify     optional async (res, { headers, get(path, headers) }) => error string | undefined, run on the
//              sanity response; `get` sends more requests to the system (e.g. no token => expect 401)
//   after      optional (ctx) => object recorded in the results after the system is stopped
//   prepare    optional async (ctx) => state, run once before the first round (e.g. mint tokens); the
//              result is ctx.state in config/headers/wrkScript
//   bar        optional { rps, p99 }: minimum req/s ratio and maximum p99 ratio vs `baseline`
//   baseline   system the bar compares with (default `reference`; e.g. JWT and API-key rows are held
//              against `portcullis-plain`, the same gateway without authentication)
//   path       request path for wrk and the sanity check (default '/'; '/big' = the ~100 KB response)
//   headers and wrkScript may also be functions of ctx
// Every system returns the backend's exact body for GET / (checked before each run).

/** The smallest useful Portcullis config: one listener, one upstream, one catch-all route. */
function portcullisBase(ctx) {
  return {
    version: 1,
    server: {
      workers: 1,
      status: { enabled: false },
      watchConfig: false,
      shutdownTimeoutMs: 2000,
    },
    listeners: [{ name: 'bench', address: '127.0.0.1', port: ctx.port }],
    upstreams: {
      // Pool size pinned to the reference proxy's 64 so the ratio measures the request path, not pool sizing.
      backend: { targets: [{ url: ctx.upstream }], pool: { connections: 64 } },
    },
    routes: [{ id: 'root', match: { pathPrefix: '/' }, upstream: 'backend' }],
    accessLog: { enabled: false },
  };
}

export const SYSTEMS = [
  {
    name: 'reference',
    command: (ctx) => ({
      args: [path.join(BENCH_DIR, 'reference-proxy.mjs')],
      env: { PORT: String(ctx.port), UPSTREAM: ctx.upstream },
    }),
  },
  {
    name: 'portcullis-plain',
    config: portcullisBase,
    bar: { rps: 0.9, p99: 1.2 },
  },
  {
    name: 'portcullis-full',
    // Every per-request stage the core has, switched on. Path normalization is always on.
    config: (ctx) => {
      const c = portcullisBase(ctx);
      c.server.trustedProxies = ['127.0.0.1/32', '::1/128']; // client-ip: X-Forwarded-For from wrk is believed
      c.requestId = { header: 'x-request-id', trustIncoming: 'trusted-proxies' };
      c.accessLog = { enabled: true, destination: ctx.file('access.log') };
      c.upstreams.backend.healthCheck = { passive: {} }; // passive checks with their defaults
      Object.assign(c.routes[0], {
        requestHeaders: { set: { 'x-bench-gateway': 'portcullis' }, remove: ['accept'] },
        responseHeaders: { set: { 'x-content-type-options': 'nosniff' }, remove: ['x-backend'] },
        limits: { maxBodyBytes: 1_048_576 },
      });
      return c;
    },
    headers: { 'X-Forwarded-For': '203.0.113.7' },
    verify: (res) => {
      if (res.headers['x-content-type-options'] !== 'nosniff') return 'response header rewrite (set) not applied';
      if ('x-backend' in res.headers) return 'response header rewrite (remove) not applied';
      return undefined;
    },
    after: (ctx) => {
      const f = ctx.file('access.log');
      const bytes = fs.existsSync(f) ? fs.statSync(f).size : 0;
      fs.rmSync(f, { force: true });
      return { accessLogBytes: bytes };
    },
    bar: { rps: 0.8 },
  },
];

/** wrk Lua script: one prebuilt request per credential value, sent in turn (each value reused many times). */
function rotatingHeaderScript(headerName, values) {
  return `local values = {${values.map((v) => JSON.stringify(v)).join(',\n')}}
local reqs = {}
local n = 0
function init(args)
  for i, v in ipairs(values) do
    local h = {}
    for k, x in pairs(wrk.headers) do h[k] = x end
    h["${headerName}"] = v
    reqs[i] = wrk.format(nil, nil, h)
  end
end
function request()
  n = n + 1
  if n > #reqs then n = 1 end
  return reqs[n]
end
`;
}

/** A route with authentication: the plain config plus `authentication` and the given identity block. */
function portcullisAuth(ctx, identity, methods) {
  const c = portcullisBase(ctx);
  c.identity = identity;
  c.routes[0].authentication = { methods };
  return c;
}

const expect401 = async (_res, { get }) => {
  const r = await get('/', BASE_HEADERS);
  return r.status === 401 ? undefined : `a request without credentials got ${r.status}, expected 401`;
};

SYSTEMS.push({
  name: 'portcullis-jwt',
  // 1,000 distinct ES256 tokens (one per simulated user), each reused: the verification cache's hit path.
  prepare: async () => {
    const { generateKeyPair, exportJWK, SignJWT } = await import('jose');
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'bench-1', alg: 'ES256', use: 'sig' };
    const tokens = [];
    for (let i = 0; i < 1000; i++) {
      tokens.push(await new SignJWT({ scope: 'orders:read' }).setProtectedHeader({ alg: 'ES256', kid: 'bench-1' })
        .setIssuer('https://idp.bench').setAudience('bench').setSubject(`user-${i}`).setIssuedAt().setExpirationTime('2h').sign(privateKey));
    }
    return { jwk, tokens };
  },
  config: (ctx) => portcullisAuth(ctx, {
    issuers: { bench: { issuer: 'https://idp.bench', audiences: ['bench'], algorithms: ['ES256'], keys: [{ jwk: ctx.state.jwk }] } },
  }, [{ jwt: { issuers: ['bench'] } }]),
  headers: (ctx) => ({ Authorization: `Bearer ${ctx.state.tokens[0]}` }),
  wrkScript: (ctx) => rotatingHeaderScript('Authorization', ctx.state.tokens.map((t) => `Bearer ${t}`)),
  verify: expect401,
  baseline: 'portcullis-plain',
  bar: { rps: 0.8 },
});

SYSTEMS.push({
  name: 'portcullis-apikey',
  // 100 consumers with one key each (hashed with the pepper, restricted to loopback), keys sent in turn.
  prepare: async () => {
    const { generateApiKey, hashApiKey } = await import(path.join(ROOT, 'dist/identity/api-keys/format.js'));
    const pepper = 'bench-pepper-0123456789abcdefghijklmnopqrstuvwxyz';
    const keys = Array.from({ length: 100 }, () => generateApiKey());
    const consumers = keys.map((k, i) => ({ id: `consumer-${i}`, scopes: ['orders:read'], apiKeys: [{ id: `key-${i}`, hash: hashApiKey(pepper, k), cidrs: ['127.0.0.1/32'] }] }));
    return { pepper, keys, consumers };
  },
  config: (ctx) => portcullisAuth(ctx, { pepper: ctx.state.pepper, consumers: ctx.state.consumers }, [{ apiKey: {} }]),
  headers: (ctx) => ({ 'X-API-Key': ctx.state.keys[0] }),
  wrkScript: (ctx) => rotatingHeaderScript('X-API-Key', ctx.state.keys),
  verify: expect401,
  baseline: 'portcullis-plain',
  bar: { rps: 0.9 },
});

// Rate limiting (issue 5): one per-client limit that is never reached, so the row measures the limiter's
// bookkeeping. Memory store: synchronous, in process. Redis: one EVALSHA round trip per request.
function portcullisRateLimited(ctx, state) {
  const c = portcullisBase(ctx);
  if (state !== undefined) c.state = state;
  c.routes[0].rateLimit = { limits: [{ name: 'bench', limit: 1_000_000_000, windowMs: 60_000, by: ['ip'] }] };
  return c;
}
const expectRateLimitHeaders = (res) => (String(res.headers.ratelimit ?? '').startsWith('"bench";r=') ? undefined : 'no RateLimit header on the response');

SYSTEMS.push({
  name: 'portcullis-ratelimit-memory',
  config: (ctx) => portcullisRateLimited(ctx),
  verify: expectRateLimitHeaders,
  baseline: 'portcullis-plain',
  bar: { rps: 0.9 },
});

SYSTEMS.push({
  name: 'portcullis-ratelimit-redis',
  // A private redis-server on the load generator's CPU (like the backend), so Redis neither competes with
  // the system under test for its core nor counts as another process's load. BENCH_REDIS_URL: use that one.
  prepare: async (ctx) => {
    if (process.env.BENCH_REDIS_URL) return { url: process.env.BENCH_REDIS_URL };
    if (!has('redis-server')) die('the Redis row needs redis-server on PATH (or BENCH_REDIS_URL)');
    const port = await freePort();
    helpers.push(startProc('redis', 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { cpu: ctx.pin ? 0 : undefined, logFile: ctx.file('redis.log') }));
    await waitTcp(port);
    return { url: `redis://127.0.0.1:${port}` };
  },
  config: (ctx) => portcullisRateLimited(ctx, { type: 'redis', url: ctx.state.url, keyPrefix: `bench-${process.pid}:` }),
  verify: expectRateLimitHeaders,
  baseline: 'portcullis-plain',
  bar: { rps: 0.7 },
});


// ---------------------------------------------------------------- bodies (docs/pipeline.md, body phases)
// 1 KB JSON POSTs: the same route with and without a stage that reads the body (the request-body phase
// reads, decodes and checks it, then sends the same bytes upstream).
const JSON_1K = JSON.stringify({ order: { id: 'ord-1234567890', customer: { name: "Ada O'Brien", email: 'ada@example.com', tags: ['vip', 'eu'] },
  items: Array.from({ length: 8 }, (_, i) => ({ sku: `SKU-${1000 + i}`, qty: i + 1, price: 9.99 + i, note: 'fragile, keep upright' })), notes: 'Leave at the front desk.' } });
const postScript = `wrk.method = "POST"
wrk.body = ${JSON.stringify(JSON_1K)}
wrk.headers["Content-Type"] = "application/json"`;
SYSTEMS.push({
  name: 'portcullis-post-1k',
  config: portcullisBase,
  wrkScript: postScript,
});
SYSTEMS.push({
  name: 'portcullis-body-json-1k',
  config: (ctx) => { const c = portcullisBase(ctx); c.routes[0].requestBody = {}; return c; },
  wrkScript: postScript,
  baseline: 'portcullis-post-1k',
  bar: { rps: 0.85 },
});
// ~100 KB responses: streaming cost per byte, against the reference proxy on the same path.
SYSTEMS.push({
  name: 'reference-100k',
  path: '/big',
  command: (ctx) => ({ args: [path.join(BENCH_DIR, 'reference-proxy.mjs')], env: { PORT: String(ctx.port), UPSTREAM: ctx.upstream } }),
});
SYSTEMS.push({
  name: 'portcullis-100k',
  path: '/big',
  config: portcullisBase,
  baseline: 'reference-100k',
  bar: { rps: 0.95 },
});

// ---------------------------------------------------------------- TLS (docs/tls.md)
// One self-signed ECDSA P-256 certificate per bench run (ctx.tls = { cert, key }, PEM files in the temp dir),
// used by Portcullis and the reference alike. TLS 1.3 on both (Portcullis's default; the reference sets it).
// Rows with `tls: true` get the certificate; `scheme` is 'https' (HTTP/1.1 over TLS) or 'h2'; `load: 'h2load'`
// measures with h2load instead of wrk.
function portcullisTls(ctx) {
  const c = portcullisBase(ctx);
  c.listeners[0].tls = { certificates: [{ cert: ctx.tls.cert, key: ctx.tls.key }] }; // offers h2 and http/1.1 by ALPN
  return c;
}
const referenceTls = (proto) => (ctx) => ({
  args: [path.join(BENCH_DIR, 'reference-proxy.mjs')],
  env: { PORT: String(ctx.port), UPSTREAM: ctx.upstream, PROTO: proto, TLS_CERT: ctx.tls.cert, TLS_KEY: ctx.tls.key },
});
// HTTP/1.1 over TLS, keep-alive: the cost of encryption per request.
SYSTEMS.push({ name: 'reference-tls', tls: true, scheme: 'https', command: referenceTls('https') });
SYSTEMS.push({ name: 'portcullis-tls', tls: true, scheme: 'https', config: portcullisTls, baseline: 'reference-tls', bar: { rps: 0.9 } });
// A new TLS connection (full TLS 1.3 handshake; wrk does not resume sessions) for every request.
SYSTEMS.push({ name: 'reference-tls-handshake', tls: true, scheme: 'https', headers: { Connection: 'close' }, command: referenceTls('https') });
SYSTEMS.push({
  name: 'portcullis-tls-handshake', tls: true, scheme: 'https', headers: { Connection: 'close' }, config: portcullisTls,
  baseline: 'reference-tls-handshake', bar: { rps: 0.9 },
});
// HTTP/2 with h2load: 50 connections × 10 concurrent streams. The sanity check speaks h2 (ALPN) too.
const expectH2 = (res) => (res.alpn === 'h2' ? undefined : `ALPN chose ${res.alpn}, expected h2`);
SYSTEMS.push({ name: 'reference-h2', tls: true, scheme: 'h2', load: 'h2load', command: referenceTls('h2'), verify: expectH2 });
SYSTEMS.push({
  name: 'portcullis-h2', tls: true, scheme: 'h2', load: 'h2load', config: portcullisTls, verify: expectH2,
  baseline: 'reference-h2', bar: { rps: 0.8 },
});

/** Self-signed ECDSA P-256 certificate for 127.0.0.1 and localhost, valid 30 days (no expiry warning), into dir. */
function makeCertificate(dir) {
  const cert = path.join(dir, 'tls-cert.pem');
  const key = path.join(dir, 'tls-key.pem');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '30', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { encoding: 'utf8' });
  if (r.status !== 0) die(`openssl could not create the bench certificate:\n${r.stderr ?? r.error}`);
  return { cert, key };
}

// ================================================================ small helpers
/** Long-lived helper processes on the load CPU (a private redis-server): their CPU is ours, not foreign. */
const helpers = [];
function helperTicks() { return helpers.reduce((sum, p) => sum + (p.exited ? 0 : treeTicks(p.pid)), 0); }

/** Resolves once something accepts TCP connections on 127.0.0.1:port (10 s at most). */
async function waitTcp(port) {
  const until = Date.now() + 10_000;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new BenchError(`nothing listens on port ${port}`);
    await sleep(50);
  }
}
const t0 = Date.now();
function log(msg) { process.stderr.write(`[bench +${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}\n`); }
function die(msg) { process.stderr.write(`bench: ${msg}\n`); process.exit(1); }
class BenchError extends Error {}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const CLK_TCK = (() => {
  try { return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100; } catch { return 100; }
})();

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

let tmpDir; // removed on success and on signals; kept when a run fails (its logs explain why)
function cleanupTmp() {
  if (tmpDir && process.env.BENCH_KEEP_TMP !== '1') fs.rmSync(tmpDir, { recursive: true, force: true });
}

// ================================================================ processes (every child is tracked and killed on exit)
const children = new Set(); // { name, child, pid, logFile, exited }

/** Start a process in its own process group, optionally pinned with taskset; output goes to a log file. */
function startProc(name, cmd, args, { cpu, env, logFile }) {
  const fd = fs.openSync(logFile, 'a');
  const [file, argv] = cpu !== undefined ? ['taskset', ['-c', String(cpu), cmd, ...args]] : [cmd, args];
  const child = spawn(file, argv, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', fd, fd], detached: true });
  fs.closeSync(fd);
  const p = { name, child, pid: child.pid, logFile, exited: null };
  p.exitPromise = new Promise((resolve) => child.once('exit', (code, sig) => { p.exited = { code, sig }; children.delete(p); resolve(p.exited); }));
  child.once('error', (err) => { p.exited = { code: -1, sig: null, err }; children.delete(p); });
  children.add(p);
  return p;
}

/** SIGTERM the process group, wait, then SIGKILL. */
async function stopProc(p, graceMs = 5000) {
  if (!p || p.exited) return;
  try { process.kill(-p.pid, 'SIGTERM'); } catch { /* gone */ }
  const timer = sleep(graceMs).then(() => 'timeout');
  if ((await Promise.race([p.exitPromise, timer])) === 'timeout') {
    log(`${p.name} (pid ${p.pid}) ignored SIGTERM for ${graceMs} ms; SIGKILL`);
    try { process.kill(-p.pid, 'SIGKILL'); } catch { /* gone */ }
    await p.exitPromise;
  }
  // Workers that outlived their parent in the same group.
  try { process.kill(-p.pid, 'SIGKILL'); } catch { /* none left */ }
}

function killAllSync() {
  for (const p of children) {
    try { process.kill(-p.pid, 'SIGKILL'); } catch { /* gone */ }
  }
  children.clear();
}

function tail(file, lines = 30) {
  try { return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n'); } catch { return '(no output)'; }
}

// ================================================================ /proc measurements
/** { ppid, ticks } for one pid: utime+stime plus cutime+cstime (reaped children), in clock ticks. */
function readStat(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' '); // f[0] = state (field 3)
    return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) };
  } catch { return null; }
}

/** CPU ticks of a process and all its live descendants (a worker's time moves into its parent's cutime when reaped). */
function treeTicks(rootPid) {
  const kids = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const st = readStat(d);
    if (!st) continue;
    if (!kids.has(st.ppid)) kids.set(st.ppid, []);
    kids.get(st.ppid).push(Number(d));
  }
  let total = 0;
  const stack = [rootPid];
  while (stack.length) {
    const pid = stack.pop();
    const st = readStat(pid);
    if (st) total += st.ticks;
    stack.push(...(kids.get(pid) ?? []));
  }
  return total;
}

/** /proc/stat: busy and total ticks for the whole machine and per CPU. */
function cpuSnap() {
  const out = {};
  for (const line of fs.readFileSync('/proc/stat', 'utf8').split('\n')) {
    const m = /^(cpu\d*) (.*)$/.exec(line);
    if (!m) continue;
    const [user, nice, sys, idle, iowait, irq, softirq, steal] = m[2].trim().split(/\s+/).map(Number);
    const busy = user + nice + sys + irq + softirq;
    out[m[1]] = { busy, total: busy + idle + iowait + steal, steal };
  }
  return out;
}
const selfTicks = () => readStat(process.pid).ticks; // harness + reaped children (wrk)

/** Wait until the machine is quiet (other sessions share it). Returns the busy % seen last. */
async function quietGate() {
  const deadline = Date.now() + QUIET_WAIT_S * 1000;
  let warned = false;
  for (;;) {
    const a = cpuSnap().cpu;
    await sleep(1000);
    const b = cpuSnap().cpu;
    const pct = (100 * os.cpus().length * (b.busy - a.busy)) / Math.max(1, b.total - a.total);
    if (pct < FOREIGN_MAX) return pct;
    if (Date.now() > deadline) { log(`machine still busy (${pct.toFixed(0)}% of a core); measuring anyway`); return pct; }
    if (!warned) { log(`machine busy (${pct.toFixed(0)}% of a core used by others); waiting up to ${QUIET_WAIT_S}s`); warned = true; }
  }
}

// ================================================================ HTTP helpers
// scheme: 'http', 'https' (HTTP/1.1 over TLS) or 'h2' (HTTP/2 over TLS, ALPN h2). The bench's certificate is
// self-signed, so TLS requests skip certificate verification (rejectUnauthorized: false) -- only here.
function httpGet(port, urlPath, headers, timeoutMs = 2000, scheme = 'http') {
  if (scheme === 'h2') return h2Get(port, urlPath, headers, timeoutMs);
  const mod = scheme === 'https' ? https : http;
  const tlsOpts = scheme === 'https' ? { rejectUnauthorized: false } : {};
  return new Promise((resolve, reject) => {
    const req = mod.request({ host: '127.0.0.1', port, path: urlPath, method: 'GET', headers, agent: false, timeout: timeoutMs, ...tlsOpts }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** One HTTP/2 GET on a fresh session; the Host header becomes :authority. */
function h2Get(port, urlPath, headers, timeoutMs) {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false });
    const timer = setTimeout(() => { session.destroy(); reject(new Error('timeout')); }, timeoutMs);
    const done = (err, val) => { clearTimeout(timer); session.close(); if (err) reject(err); else resolve(val); };
    session.on('error', (err) => done(err));
    const h = { ':method': 'GET', ':path': urlPath };
    for (const [k, v] of Object.entries(headers)) { if (k.toLowerCase() === 'host') h[':authority'] = v; else h[k.toLowerCase()] = v; }
    const req = session.request(h);
    let status = 0;
    let resHeaders = {};
    const chunks = [];
    req.on('response', (rh) => { status = rh[':status']; resHeaders = rh; });
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => done(null, { status, headers: resHeaders, body: Buffer.concat(chunks), alpn: session.alpnProtocol }));
    req.on('error', (err) => done(err));
    req.end();
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

/** Poll until the port accepts connections and GET / answers 200; fail early if the process exits. */
async function waitReady(p, port, headers, scheme = 'http') {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let last = 'no connection';
  while (Date.now() < deadline) {
    if (p.exited) {
      throw new BenchError(`${p.name} exited during startup (${JSON.stringify(p.exited)}). Its output (${p.logFile}):\n${tail(p.logFile)}`);
    }
    if (await canConnect(port)) {
      try {
        const r = await httpGet(port, '/', headers, 2000, scheme);
        if (r.status === 200) return;
        last = `GET / -> ${r.status} ${r.body.toString().slice(0, 200)}`;
      } catch (err) { last = `GET / failed: ${err.message}`; }
    }
    await sleep(100);
  }
  throw new BenchError(`${p.name} did not come up on 127.0.0.1:${port} within ${START_TIMEOUT_MS} ms (last: ${last}). Its output (${p.logFile}):\n${tail(p.logFile)}`);
}

// ================================================================ load generators
const toMs = (tok) => {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(tok ?? '');
  if (!m) return NaN;
  return Number(m[1]) * { us: 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3 }[m[2]];
};

export function parseWrk(out) {
  const num = (re) => { const m = re.exec(out); return m ? Number(m[1]) : NaN; };
  const pct = (p) => { const m = new RegExp(`^\\s*${p}%\\s+(\\S+)`, 'm').exec(out); return m ? toMs(m[1]) : NaN; };
  const se = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const socketErrors = se ? { connect: +se[1], read: +se[2], write: +se[3], timeout: +se[4] } : { connect: 0, read: 0, write: 0, timeout: 0 };
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  return {
    rps: num(/^Requests\/sec:\s+([\d.]+)/m),
    requests: num(/^\s*(\d+) requests in/m),
    p50Ms: pct(50), p90Ms: pct(90), p99Ms: pct(99),
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    socketErrors,
    socketErrorCount: socketErrors.connect + socketErrors.read + socketErrors.write + socketErrors.timeout,
  };
}

function runCapture(name, cmd, args, cpu) {
  return new Promise((resolve, reject) => {
    const [file, argv] = cpu !== undefined ? ['taskset', ['-c', String(cpu), cmd, ...args]] : [cmd, args];
    const child = spawn(file, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const p = { name, child, pid: child.pid, exited: null };
    children.add(p);
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    child.once('error', (err) => { children.delete(p); reject(err); });
    child.once('close', (code) => { p.exited = { code }; children.delete(p); resolve({ code, out }); });
  });
}

const WRK = {
  name: 'wrk',
  version: () => (spawnSync('wrk', ['-v'], { encoding: 'utf8' }).stdout ?? '').split('\n')[0].trim(),
  async run({ url, headers, seconds, latency, script, cpu }) {
    const args = ['-t1', `-c${CONNECTIONS}`, `-d${seconds}s`];
    if (latency) args.push('--latency');
    for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
    if (script) args.push('-s', script);
    args.push(url);
    const { code, out } = await runCapture('wrk', 'wrk', args, cpu);
    const r = parseWrk(out);
    if (code !== 0 || !Number.isFinite(r.rps)) throw new BenchError(`wrk failed (exit ${code}):\n${out}`);
    return { ...r, raw: out };
  },
};

// Fallback only when autocannon is already installed (it is not a project dependency). Its numbers are not
// comparable with wrk's: it is a Node program and costs far more CPU per request on the load core.
const AUTOCANNON = {
  name: 'autocannon',
  version: () => spawnSync('npx', ['--no-install', 'autocannon', '--version'], { encoding: 'utf8' }).stdout.trim().split('\n')[0],
  async run({ url, headers, seconds, script, cpu }) {
    if (script) throw new BenchError('this row needs a wrk Lua script; install wrk');
    const args = ['--no-install', 'autocannon', '-j', '-c', String(CONNECTIONS), '-d', String(seconds)];
    for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}=${v}`);
    args.push(url);
    const { code, out } = await runCapture('autocannon', 'npx', args, cpu);
    let j;
    try { j = JSON.parse(out.slice(out.indexOf('{'), out.lastIndexOf('}') + 1)); } catch { throw new BenchError(`autocannon failed (exit ${code}):\n${out}`); }
    const socketErrors = { connect: 0, read: j.errors - (j.timeouts ?? 0), write: 0, timeout: j.timeouts ?? 0 };
    return {
      rps: j.requests.total / (j.duration || seconds), requests: j.requests.total,
      p50Ms: j.latency.p50, p90Ms: j.latency.p90, p99Ms: j.latency.p99,
      non2xx: j.non2xx ?? 0, socketErrors, socketErrorCount: j.errors ?? 0, raw: out,
    };
  },
};

// HTTP/2 rows (`load: 'h2load'`): nghttp2's h2load, 50 connections × 10 concurrent streams, one thread.
// h2load prints min/max/mean/sd of the request time but no percentiles: p50/p99 are NaN (reported as n/a),
// and the mean goes to meanMs.
export function parseH2load(out) {
  const num = (re) => { const m = re.exec(out); return m ? Number(m[1]) : NaN; };
  const rq = /^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/m.exec(out);
  const st = /^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/m.exec(out);
  const tr = /^time for request:\s+(\S+)\s+(\S+)\s+(\S+)/m.exec(out);
  const done = rq ? Number(rq[3]) : NaN;
  const socketErrors = { connect: 0, read: 0, write: 0, timeout: 0 };
  if (rq) { socketErrors.read = Number(rq[6]); socketErrors.timeout = Number(rq[7]); }
  return {
    rps: num(/^finished in [\d.]+m?s, ([\d.]+) req\/s/m),
    requests: Number.isFinite(done) ? done : NaN,
    p50Ms: NaN, p90Ms: NaN, p99Ms: NaN,
    meanMs: tr ? toMs(tr[3]) : NaN,
    // Answers that were not 2xx, or h2load's "failed" count less stream errors and timeouts, whichever is larger
    // ("failed" includes the non-2xx answers among the requests counted as done).
    non2xx: st && rq ? Math.max(Number(st[2]) + Number(st[3]) + Number(st[4]), Number(rq[5]) - Number(rq[6]) - Number(rq[7])) : NaN,
    socketErrors,
    socketErrorCount: socketErrors.connect + socketErrors.read + socketErrors.write + socketErrors.timeout,
  };
}

const H2LOAD_STREAMS = 10;
const H2LOAD = {
  name: 'h2load',
  version: () => (spawnSync('h2load', ['--version'], { encoding: 'utf8' }).stdout ?? '').split('\n')[0].trim(),
  async run({ url, headers, seconds, script, cpu }) {
    if (script) throw new BenchError('h2load rows cannot use a wrk Lua script');
    const args = ['-t1', '-c', String(CONNECTIONS), '-m', String(H2LOAD_STREAMS), '-D', String(seconds)];
    for (const [k, v] of Object.entries(headers)) args.push('-H', k.toLowerCase() === 'host' ? `:authority: ${v}` : `${k}: ${v}`);
    args.push(url);
    const { code, out } = await runCapture('h2load', 'h2load', args, cpu);
    const r = parseH2load(out);
    if (code !== 0 || !Number.isFinite(r.rps) || !Number.isFinite(r.non2xx)) throw new BenchError(`h2load failed (exit ${code}):\n${out}`);
    return { ...r, raw: out };
  },
};

function pickLoadGenerator() {
  if (has('wrk')) return WRK;
  if (spawnSync('npx', ['--no-install', 'autocannon', '--version'], { stdio: 'ignore', timeout: 30_000 }).status === 0) {
    log('wrk not found; falling back to the installed autocannon (numbers are not comparable with wrk runs)');
    return AUTOCANNON;
  }
  die('wrk is not on PATH. Install it with:\n  sudo apt-get install -y wrk      (Debian/Ubuntu)\n  brew install wrk                 (macOS)\nthen run `npm run bench` again.');
}

// ================================================================ one measured run
async function runOne({ sys, round, ctx, load: defaultLoad, backend, expectedBody, pin }) {
  const load = sys.load === 'h2load' ? H2LOAD : defaultLoad;
  const scheme = sys.scheme ?? 'http';
  const sutCpu = pin ? 1 : undefined;
  const loadCpu = pin ? 0 : undefined;
  ctx.state = sys.state;
  const headers = { ...BASE_HEADERS, ...((typeof sys.headers === 'function' ? sys.headers(ctx) : sys.headers) ?? {}) };
  let proc;
  let script;
  if (sys.wrkScript) { script = ctx.file(`${sys.name}.lua`); fs.writeFileSync(script, typeof sys.wrkScript === 'function' ? sys.wrkScript(ctx) : sys.wrkScript); }

  const foreignBefore = await quietGate();
  const logFile = ctx.file(`${sys.name}-r${round}.log`);
  if (sys.config) {
    const cfgFile = ctx.file(`${sys.name}-r${round}.yaml`);
    fs.writeFileSync(cfgFile, YAML.stringify(sys.config(ctx)));
    proc = startProc(sys.name, process.execPath, [CLI, 'start', '-c', cfgFile], { cpu: sutCpu, logFile });
  } else {
    const { args, env } = sys.command(ctx);
    proc = startProc(sys.name, process.execPath, args, { cpu: sutCpu, env, logFile });
  }
  try {
    await waitReady(proc, ctx.port, headers, scheme);

    // Sanity: 200 with the backend's exact body, through the system, with the same headers wrk sends.
    const reqPath = sys.path ?? '/';
    const want = reqPath === '/' ? expectedBody : (await httpGet(Number(new URL(ctx.upstream).port), reqPath, BASE_HEADERS)).body;
    const res = await httpGet(ctx.port, reqPath, headers, 2000, scheme);
    let problem;
    if (res.status !== 200) problem = `status ${res.status}`;
    else if (!res.body.equals(want)) problem = `body differs from the backend's (${res.body.length} bytes vs ${want.length}): ${res.body.toString().slice(0, 200)}`;
    else problem = await sys.verify?.(res, { headers, get: (p, h = headers) => httpGet(ctx.port, p, h, 2000, scheme) });
    if (problem) throw new BenchError(`sanity check failed for ${sys.name}: ${problem}\n${proc.logFile}:\n${tail(proc.logFile)}`);

    const url = `${scheme === 'http' ? 'http' : 'https'}://127.0.0.1:${ctx.port}${reqPath}`;
    if (WARMUP > 0) await load.run({ url, headers, seconds: WARMUP, latency: false, script, cpu: loadCpu });

    const s0 = treeTicks(proc.pid), b0 = treeTicks(backend.pid) + helperTicks(), h0 = selfTicks(), c0 = cpuSnap();
    const r = await load.run({ url, headers, seconds: DURATION, latency: true, script, cpu: loadCpu });
    const s1 = treeTicks(proc.pid), b1 = treeTicks(backend.pid) + helperTicks(), h1 = selfTicks(), c1 = cpuSnap();
    if (proc.exited) throw new BenchError(`${sys.name} died during the run:\n${tail(proc.logFile)}`);

    const d = (k) => ({ busy: c1[k].busy - c0[k].busy, total: Math.max(1, c1[k].total - c0[k].total), steal: c1[k].steal - c0[k].steal });
    const all = d('cpu');
    const ncpu = Object.keys(c1).filter((k) => k !== 'cpu').length;
    const mine = (s1 - s0) + (b1 - b0) + (h1 - h0);
    const pctCore = (ticks) => (100 * ncpu * ticks) / all.total;
    const run = {
      round, system: sys.name,
      rps: r.rps, requests: r.requests, p50Ms: r.p50Ms, p90Ms: r.p90Ms, p99Ms: r.p99Ms, ...(r.meanMs !== undefined ? { meanMs: r.meanMs } : {}),
      loadGenerator: load.name,
      non2xx: r.non2xx, socketErrors: r.socketErrors,
      cpuUsPerReq: r.requests > 0 ? ((s1 - s0) / CLK_TCK) * 1e6 / r.requests : NaN,
      backendCpuUsPerReq: r.requests > 0 ? ((b1 - b0) / CLK_TCK) * 1e6 / r.requests : NaN,
      cpu0BusyPct: c1.cpu0 ? (100 * d('cpu0').busy) / d('cpu0').total : null,
      cpu1BusyPct: c1.cpu1 ? (100 * d('cpu1').busy) / d('cpu1').total : null,
      stealPct: (100 * all.steal) / all.total,
      foreignPct: Math.max(0, pctCore(all.busy - mine)),
      quietGatePct: foreignBefore,
      sanity: { status: res.status, bytes: res.body.length, ...(res.alpn ? { alpn: res.alpn } : {}) },
      wrkOutput: r.raw,
    };
    await stopProc(proc);
    Object.assign(run, sys.after?.(ctx) ?? {});
    return run;
  } finally {
    await stopProc(proc);
  }
}

// ================================================================ report
const fmt = (n, digits = 0) => (Number.isFinite(n) ? n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : 'n/a');

function summarize(runs, systems) {
  const by = (name) => runs.filter((r) => r.system === name);
  const ref = by('reference');
  const refRps = median(ref.map((r) => r.rps));
  const refP99 = median(ref.map((r) => r.p99Ms));
  return systems.map((sys) => {
    const rs = by(sys.name);
    const s = {
      system: sys.name, runs: rs.length,
      rpsMedian: median(rs.map((r) => r.rps)),
      rpsMin: Math.min(...rs.map((r) => r.rps)), rpsMax: Math.max(...rs.map((r) => r.rps)),
      p50Ms: median(rs.map((r) => r.p50Ms)), p99Ms: median(rs.map((r) => r.p99Ms)),
      cpuUsPerReq: median(rs.map((r) => r.cpuUsPerReq)),
      cpu0BusyPct: median(rs.map((r) => r.cpu0BusyPct ?? NaN)), cpu1BusyPct: median(rs.map((r) => r.cpu1BusyPct ?? NaN)),
      noisy: rs.some((r) => r.foreignPct > FOREIGN_MAX),
    };
    s.rpsRatio = ref.length ? s.rpsMedian / refRps : NaN;
    s.p99Ratio = ref.length ? s.p99Ms / refP99 : NaN;
    // Same-round ratios: the rounds are interleaved, so each pair saw the same machine conditions.
    s.rpsRatioPerRound = rs.map((r) => { const x = ref.find((q) => q.round === r.round); return x ? r.rps / x.rps : NaN; });
    const baseName = sys.baseline ?? 'reference';
    const base = by(baseName);
    if (sys.bar && base.length && sys.name !== baseName) {
      const rpsRatio = s.rpsMedian / median(base.map((r) => r.rps));
      const p99Ratio = s.p99Ms / median(base.map((r) => r.p99Ms));
      const perRound = rs.map((r) => { const x = base.find((q) => q.round === r.round); return x ? r.rps / x.rps : NaN; });
      s.bar = { ...sys.bar, baseline: baseName, rpsRatio, p99Ratio, perRound, rpsOk: rpsRatio >= sys.bar.rps, p99Ok: sys.bar.p99 === undefined ? true : p99Ratio <= sys.bar.p99 };
    }
    return s;
  });
}

function printTable(summary) {
  const head = ['system', 'req/s median', 'min – max', 'p50 ms', 'p99 ms', 'CPU µs/req', 'cpu0/cpu1 busy', 'req/s vs ref', 'p99 vs ref'];
  const rows = summary.map((s) => [
    s.system + (s.noisy ? ' †' : ''),
    fmt(s.rpsMedian), `${fmt(s.rpsMin)} – ${fmt(s.rpsMax)}`,
    fmt(s.p50Ms, 2), fmt(s.p99Ms, 2), fmt(s.cpuUsPerReq, 1),
    `${fmt(s.cpu0BusyPct)}% / ${fmt(s.cpu1BusyPct)}%`,
    Number.isFinite(s.rpsRatio) ? `${fmt(100 * s.rpsRatio)}%` : 'n/a',
    Number.isFinite(s.p99Ratio) ? `${fmt(s.p99Ratio, 2)}×` : 'n/a',
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells) => '| ' + cells.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join(' | ') + ' |';
  console.log(line(head));
  console.log('|' + w.map((n, i) => (i === 0 ? '-'.repeat(n + 2) : '-'.repeat(n + 1) + ':')).join('|') + '|');
  for (const r of rows) console.log(line(r));
  if (summary.some((s) => s.noisy)) console.log(`† at least one kept run had more than ${FOREIGN_MAX}% of a core used by other processes (after ${MAX_TRIES} tries)`);
  for (const s of summary) {
    if (!s.bar) continue;
    const ok = s.bar.rpsOk && s.bar.p99Ok;
    const p99 = s.bar.p99 === undefined ? '' : `, p99 ≤ ${s.bar.p99}× (${fmt(s.bar.p99Ratio, 2)}×)`;
    console.log(`bar ${ok ? 'met ' : 'MISSED'}: ${s.system}: req/s ≥ ${fmt(100 * s.bar.rps)}% of ${s.bar.baseline} (${fmt(100 * s.bar.rpsRatio)}%, per round ${s.bar.perRound.map((x) => `${fmt(100 * x)}%`).join(' ')})${p99}`);
  }
}

// ================================================================ main
async function main() {
  const systems = SYSTEMS.filter((s) => ONLY.length === 0 || ONLY.includes(s.name));
  const unknown = ONLY.filter((n) => !SYSTEMS.some((s) => s.name === n));
  if (unknown.length) die(`unknown system(s) in SYSTEMS: ${unknown.join(', ')} (known: ${SYSTEMS.map((s) => s.name).join(', ')})`);
  if (systems.length === 0) die('no systems selected');
  if (ROUNDS < 1 || DURATION < 1) die('ROUNDS and DURATION must be ≥ 1');

  const load = pickLoadGenerator();
  if (systems.some((s) => s.load === 'h2load') && !has('h2load')) die('the HTTP/2 rows need h2load: apt-get install -y nghttp2-client');
  if (systems.some((s) => s.tls) && !has('openssl')) die('the TLS rows need openssl on PATH (for the bench certificate)');

  if (systems.some((s) => s.config)) {
    if (process.env.BENCH_NO_BUILD !== '1') {
      log('npm run build');
      const b = spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: ['ignore', 2, 2] });
      if (b.status !== 0) die('`npm run build` failed (set BENCH_NO_BUILD=1 to use the existing dist/)');
    }
    if (!fs.existsSync(CLI)) die(`${path.relative(ROOT, CLI)} does not exist; run \`npm run build\` (or select SYSTEMS=reference)`);
  }

  let pin = process.env.BENCH_PIN !== '0' && has('taskset');
  if (pin && os.cpus().length < 2) { log('fewer than 2 CPUs: not pinning'); pin = false; }
  if (process.env.BENCH_PIN !== '0' && !has('taskset')) log('taskset not found: not pinning (install util-linux)');

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-bench-'));
  tmpDir = dir;
  log(`temp dir ${dir}; ${load.name}; layout ${pin ? 'split (wrk + backend on CPU0, system under test on CPU1)' : 'unpinned'}; ` +
    `${ROUNDS} round(s) × ${systems.map((s) => s.name).join(', ')}; ${DURATION}s runs, ${WARMUP}s warm-up, ${CONNECTIONS} connections`);

  // Backend: one process for the whole bench, on the load generator's CPU.
  const backendPort = await freePort();
  const backend = startProc('backend', process.execPath, [path.join(BENCH_DIR, 'backend.mjs'), String(backendPort)],
    { cpu: pin ? 0 : undefined, logFile: path.join(dir, 'backend.log') });
  await waitReady(backend, backendPort, BASE_HEADERS);
  const expectedBody = (await httpGet(backendPort, '/', BASE_HEADERS)).body;

  const tls = systems.some((s) => s.tls) ? makeCertificate(dir) : undefined;
  const ctxFor = (port) => ({ port, upstream: `http://127.0.0.1:${backendPort}`, dir, pin, tls, file: (name) => path.join(dir, name) });
  for (const sys of systems) if (sys.prepare) sys.state = await sys.prepare(ctxFor(0));
  const runs = [];
  const failures = [];
  const discarded = []; // noisy runs that were repeated
  let fatal;
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      for (const sys of systems) {
        // A run during which other processes used more than FOREIGN_MAX % of a core is repeated (fresh start).
        let run;
        for (let attempt = 1; ; attempt++) {
          const ctx = ctxFor(await freePort());
          run = await runOne({ sys, round, ctx, load, backend, expectedBody, pin });
          run.tries = attempt;
          if (run.foreignPct <= FOREIGN_MAX || attempt >= MAX_TRIES) break;
          log(`r${round} ${sys.name}: other processes used ${fmt(run.foreignPct, 1)}% of a core during the run (${fmt(run.rps)} req/s); repeating (try ${attempt + 1} of ${MAX_TRIES})`);
          discarded.push(run);
        }
        runs.push(run);
        const errs = run.non2xx + Object.values(run.socketErrors).reduce((a, b) => a + b, 0);
        if (errs) failures.push(`${sys.name} round ${round}: ${run.non2xx} non-2xx, socket errors ${JSON.stringify(run.socketErrors)}`);
        log(`r${round} ${sys.name.padEnd(18)} ${fmt(run.rps).padStart(7)} req/s  p50 ${fmt(run.p50Ms, 2)} ms  p99 ${fmt(run.p99Ms, 2)} ms  ` +
          `${fmt(run.cpuUsPerReq, 1)} µs/req  cpu0/1 ${fmt(run.cpu0BusyPct)}/${fmt(run.cpu1BusyPct)}%  foreign ${fmt(run.foreignPct, 1)}%` +
          (errs ? `  ERRORS: ${errs}` : ''));
      }
    }
  } catch (err) {
    fatal = err;
  }
  await stopProc(backend);
  for (const h of helpers) await stopProc(h);

  const summary = summarize(runs, systems);
  const result = {
    startedAt: new Date(t0).toISOString(), finishedAt: new Date().toISOString(),
    settings: { rounds: ROUNDS, durationS: DURATION, warmupS: WARMUP, connections: CONNECTIONS, pinned: pin, headers: BASE_HEADERS },
    machine: { node: process.version, loadGenerator: load.version() || load.name, ...(systems.some((s) => s.load === 'h2load') ? { h2load: H2LOAD.version() } : {}), cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, kernel: os.release(), clkTck: CLK_TCK },
    systems: systems.map((s) => { const c = { ...ctxFor(0), state: s.state }; return { name: s.name, headers: (typeof s.headers === 'function' ? s.headers(c) : s.headers) ?? {}, config: s.config ? s.config(c) : undefined }; }),
    runs, discarded, summary, failures, fatal: fatal ? String(fatal.message ?? fatal) : undefined,
  };
  const resultsDir = path.join(BENCH_DIR, 'results');
  fs.mkdirSync(resultsDir, { recursive: true });
  const outFile = path.join(resultsDir, `${new Date(t0).toISOString().replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(outFile, JSON.stringify(result, null, 2) + '\n');

  if (runs.length) { console.log(); printTable(summary); console.log(); }
  console.log(`raw results: ${path.relative(process.cwd(), outFile)}`);

  if (fatal) {
    process.stderr.write(`\nbench FAILED: ${fatal instanceof BenchError ? fatal.message : fatal.stack}\n(temp dir kept: ${dir})\n`);
    process.exitCode = 1;
    return;
  }
  cleanupTmp();
  if (failures.length) {
    process.stderr.write(`\nbench FAILED: runs with errors (the numbers above are not valid):\n  ${failures.join('\n  ')}\n`);
    process.exitCode = 1;
    return;
  }
  if (process.env.BENCH_ENFORCE_BARS === '1' && summary.some((s) => s.bar && !(s.bar.rpsOk && s.bar.p99Ok))) {
    process.stderr.write('\nbench FAILED: a bar was missed (BENCH_ENFORCE_BARS=1)\n');
    process.exitCode = 1;
  }
}

// Run when started as a script (a symlinked or space-containing path included), not when imported.
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === fs.realpathSync(process.argv[1])) {
  // Never leave servers behind: on normal exit, errors and signals.
  process.on('exit', killAllSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => { log(`${sig}: stopping everything`); killAllSync(); cleanupTmp(); process.exit(130); });
  }
  process.on('uncaughtException', (err) => { process.stderr.write(`bench: ${err.stack}\n`); killAllSync(); process.exit(1); });
  process.on('unhandledRejection', (err) => { process.stderr.write(`bench: ${err?.stack ?? err}\n`); killAllSync(); process.exit(1); });

  main().catch((err) => {
    process.stderr.write(`bench FAILED: ${err instanceof BenchError ? err.message : err.stack}\n`);
    killAllSync();
    process.exit(1);
  });
}
