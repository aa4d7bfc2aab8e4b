#!/usr/bin/env node
// Rate-limit accuracy across processes (`node bench/rate-limit-accuracy.mjs`, after `npm run build`).
// Two setups, each with three routes limited to LIMIT per WINDOW_MS on one key (`by: [route]`):
//   redis    two Portcullis processes sharing one Redis (clients alternate between them)
//   cluster  one Portcullis process with 2 workers and the memory store (the primary owns the counters)
// CLIENTS concurrent keep-alive clients per route hammer it for DURATION seconds. The gateway's own
// RateLimit header (`t` = seconds to the window's end) tells which window admitted each request, so
// window edges are the gateway's, not the client's clock. Reported:
//   fixed window    admitted per window (must equal LIMIT in every window the clients covered)
//   token bucket    admitted in total vs burst + rate·elapsed, and per window after the first
//   sliding window  admitted per fixed window and the most admitted in any WINDOW_MS span (its error)
// Env: DURATION [30] (s)  CLIENTS [200]  LIMIT [100]  WINDOW_MS [10000]  REDIS_URL [redis://127.0.0.1:6379]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const CLI = path.join(ROOT, 'dist/cli/main.js');
const DURATION = Number(process.env.DURATION ?? 30);
const CLIENTS = Number(process.env.CLIENTS ?? 200);
const LIMIT = Number(process.env.LIMIT ?? 100);
const WINDOW_MS = Number(process.env.WINDOW_MS ?? 10_000);
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const ALGORITHMS = ['fixed-window', 'token-bucket', 'sliding-window'];

if (!fs.existsSync(CLI)) { console.error('dist/cli/main.js is missing: run `npm run build` first'); process.exit(2); }

const children = new Set();
const cleanup = () => { for (const c of children) c.kill('SIGKILL'); };
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

const freePort = () => new Promise((resolve) => { const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); }); });

async function startBackend() {
  const server = http.createServer((_req, res) => { res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2 }); res.end('ok'); });
  server.keepAliveTimeout = 60_000;
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }) };
}

function gatewayConfig(port, backend, extra) {
  return {
    version: 1,
    server: { status: { enabled: false }, watchConfig: false, shutdownTimeoutMs: 1000, ...extra.server },
    listeners: [{ name: 'main', address: '127.0.0.1', port }],
    upstreams: { backend: { targets: [{ url: backend }], pool: { connections: 256 } } },
    accessLog: { enabled: false },
    ...(extra.state ? { state: extra.state } : {}),
    routes: ALGORITHMS.map((algorithm) => ({
      id: algorithm, match: { pathPrefix: `/${algorithm}` }, upstream: 'backend',
      // failClosed: without Redis the "shared Redis" setup must fail loudly, not measure local fallback limiters
      rateLimit: { onStoreError: 'failClosed', limits: [{ name: 'acc', algorithm, limit: LIMIT, windowMs: WINDOW_MS, by: ['route'] }] },
    })),
  };
}

async function startGateway(dir, name, cfg) {
  const file = path.join(dir, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify(cfg));
  const child = spawn(process.execPath, [CLI, 'start', '-c', file], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, PORTCULLIS_LOG_LEVEL: 'info' } });
  children.add(child);
  let err = '';
  const workers = cfg.server.workers ?? 1;
  await new Promise((resolve, reject) => {
    const pids = new Set();
    const timer = setTimeout(() => reject(new Error(`${name} did not start:\n${err}`)), 30_000);
    child.stderr.setEncoding('utf8').on('data', (d) => {
      err += d;
      for (const line of d.split('\n')) {
        try { const l = JSON.parse(line); if (l.listener === 'main') pids.add(l.pid); } catch { /* not JSON */ }
      }
      if (pids.size >= workers) { clearTimeout(timer); resolve(); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`${name} exited (${code}):\n${err}`)); });
  });
  return { origin: `http://127.0.0.1:${cfg.listeners[0].port}`, stop: () => { child.kill('SIGTERM'); children.delete(child); } };
}

/** CLIENTS loops per route until `until`; records each response: time received, status, reset seconds. */
async function hammer(origins, agent, route, until) {
  const rec = [];
  const client = async (i) => {
    const origin = origins[i % origins.length];
    while (Date.now() < until) {
      const sent = Date.now();
      try {
        const r = await request(`${origin}/${route}`, { dispatcher: agent });
        await r.body.dump();
        const m = /;r=(\d+);t=(\d+)/.exec(String(r.headers.ratelimit ?? ''));
        rec.push({ sent, recv: Date.now(), status: r.statusCode, t: m ? Number(m[2]) : undefined });
      } catch (e) {
        rec.push({ sent, recv: Date.now(), status: 0, error: e.message });
      }
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, (_, i) => client(i)));
  return rec;
}

/** Window index of an admitted request, from the gateway's own `t` (seconds to the window's end). */
const windowOf = (r) => Math.floor((r.recv + r.t * 1000) / WINDOW_MS) - 1;

function analyse(algorithm, rec, start, end) {
  const ok = rec.filter((r) => r.status === 200);
  const other = rec.filter((r) => r.status !== 200 && r.status !== 429);
  const out = { algorithm, requests: rec.length, admitted: ok.length, errors: other.length };
  const firstFull = Math.ceil(start / WINDOW_MS);
  const lastFull = Math.floor(end / WINDOW_MS) - 1;
  if (algorithm === 'token-bucket') {
    // burst (= LIMIT) at the start, then LIMIT per WINDOW_MS
    // between the first and the last admission the bucket refills LIMIT per WINDOW_MS (client receive times:
    // the decision span is this ± a request's latency, so ±1 is expected)
    const span = Math.max(...ok.map((r) => r.recv)) - Math.min(...ok.map((r) => r.recv));
    out.expected = LIMIT + Math.floor((span * LIMIT) / WINDOW_MS);
    const t0 = Math.min(...ok.map((r) => r.sent));
    const per = new Map();
    for (const r of ok) { const w = Math.floor((r.recv - t0) / WINDOW_MS); per.set(w, (per.get(w) ?? 0) + 1); }
    out.perWindowFromStart = [...per.entries()].sort((a, b) => a[0] - b[0]).map(([, n]) => n);
    return out;
  }
  const per = new Map();
  for (const r of ok) { const w = windowOf(r); per.set(w, (per.get(w) ?? 0) + 1); }
  out.perWindow = [...per.entries()].sort((a, b) => a[0] - b[0]).map(([w, n]) => ({ window: w, admitted: n, full: w >= firstFull && w <= lastFull }));
  out.fullWindowsExact = out.perWindow.filter((w) => w.full).every((w) => w.admitted === LIMIT);
  if (algorithm === 'sliding-window') {
    // most admissions in any WINDOW_MS span (receive times: an upper bound of the true decision-time count)
    const times = ok.map((r) => r.recv).sort((a, b) => a - b);
    let max = 0;
    for (let i = 0, j = 0; i < times.length; i++) {
      while (times[i] - times[j] >= WINDOW_MS) j++;
      max = Math.max(max, i - j + 1);
    }
    out.maxInAnySpan = max;
    out.errorPct = Math.round(((max - LIMIT) / LIMIT) * 1000) / 10;
  }
  return out;
}

async function run(name, origins) {
  const agent = new Agent({ connections: CLIENTS, keepAliveTimeout: 60_000 });
  const start = Date.now();
  const until = start + DURATION * 1000;
  const recs = await Promise.all(ALGORITHMS.map((a) => hammer(origins, agent, a, until)));
  await agent.close();
  const end = Date.now();
  return { setup: name, results: ALGORITHMS.map((a, i) => analyse(a, recs[i], start, end)) };
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-rl-acc-'));
const backend = await startBackend();
const report = { limit: LIMIT, windowMs: WINDOW_MS, clients: CLIENTS, durationS: DURATION, setups: [] };
try {
  const prefix = `rl-acc-${process.pid}-${Date.now()}:`;
  const state = { type: 'redis', url: REDIS_URL, keyPrefix: prefix };
  const a = await startGateway(dir, 'redis-a', gatewayConfig(await freePort(), backend.url, { state, server: { workers: 1 } }));
  const b = await startGateway(dir, 'redis-b', gatewayConfig(await freePort(), backend.url, { state, server: { workers: 1 } }));
  report.setups.push(await run('two processes, shared Redis', [a.origin, b.origin]));
  a.stop(); b.stop();
  const c = await startGateway(dir, 'cluster', gatewayConfig(await freePort(), backend.url, { server: { workers: 2 } }));
  report.setups.push(await run('one process, 2 workers, memory store', [c.origin]));
  c.stop();
} finally {
  await backend.close();
  cleanup();
  fs.rmSync(dir, { recursive: true, force: true });
}

for (const s of report.setups) {
  console.log(`\n${s.setup}  (limit ${LIMIT} per ${WINDOW_MS / 1000} s, ${CLIENTS} clients per route, ${DURATION} s)`);
  for (const r of s.results) {
    const head = `  ${r.algorithm.padEnd(15)} requests ${r.requests}  admitted ${r.admitted}  errors ${r.errors}`;
    if (r.algorithm === 'token-bucket') console.log(`${head}  expected (burst + refill between first and last admission) ${r.expected}  per ${WINDOW_MS / 1000} s from start: ${r.perWindowFromStart.join(', ')}`);
    else console.log(`${head}  per window: ${r.perWindow.map((w) => `${w.admitted}${w.full ? '' : '*'}`).join(', ')}${r.algorithm === 'fixed-window' ? `  full windows exact: ${r.fullWindowsExact}` : `  max in any ${WINDOW_MS / 1000} s span: ${r.maxInAnySpan} (error ${r.errorPct} %)`}`);
  }
}
console.log('\n(* = a window the run covered only partly)');
if (process.argv.includes('--json')) console.log(JSON.stringify(report, null, 2));
