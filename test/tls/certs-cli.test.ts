// `portcullis certs dev`: the files it writes work for a real HTTPS listener and mTLS; it never
// overwrites without --force; a missing openssl is a clear error; the command is wired into the CLI.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { X509Certificate } from 'node:crypto';
import { runCerts, DEV_FILES } from '../../src/cli/certs.js';
import { UsageError } from '../../src/cli/args.js';
import { startTlsGateway, tryHandshake } from './helpers.js';
import { spawnTracked } from '../helpers/process.js';
import { tempDir, removeTempDir } from '../helpers/tmp.js';
import { scaled } from '../helpers/wait.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
let dir: string;
before(() => { dir = tempDir('portcullis-certs-dev-'); });
after(() => removeTempDir(dir));

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (l: string) => { out.push(l); }, err: (l: string) => { err.push(l); } }, out, err };
}

test('certs dev writes a CA, a server and a client certificate that work for HTTPS and mTLS', async () => {
  const out = join(dir, 'a');
  const c = io();
  const code = await runCerts({ out, names: 'localhost,127.0.0.1,api.dev.test' }, ['dev'], c.io);
  assert.equal(code, 0, c.err.join('\n'));
  for (const f of DEV_FILES) assert.ok(statSync(join(out, f)).isFile(), f);
  assert.equal(statSync(join(out, 'server-key.pem')).mode & 0o777, 0o600);
  assert.equal(statSync(join(out, 'ca-key.pem')).mode & 0o777, 0o600);
  const text = c.out.join('\n');
  assert.match(text, /not for production/);
  assert.match(text, new RegExp(`- cert: ${join(out, 'server.pem').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  const server = new X509Certificate(readFileSync(join(out, 'server.pem')));
  assert.equal(server.subjectAltName, 'DNS:localhost, IP Address:127.0.0.1, DNS:api.dev.test');
  const ca = readFileSync(join(out, 'ca.pem'), 'utf8');
  assert.ok(server.checkIssued(new X509Certificate(ca)));

  const g = await startTlsGateway({
    certificates: [{ cert: join(out, 'server.pem'), key: join(out, 'server-key.pem') }],
    clientCertificate: { mode: 'request', ca: join(out, 'ca.pem') },
  });
  try {
    const h = await tryHandshake(g.port, {
      servername: 'api.dev.test', rejectUnauthorized: true, ca,
      cert: readFileSync(join(out, 'client.pem')), key: readFileSync(join(out, 'client-key.pem')),
    });
    assert.ok(!('error' in h), JSON.stringify(h));
    assert.equal(h.protocol, 'TLSv1.3');
  } finally {
    await g.close();
  }
});

test('certs dev refuses to overwrite without --force', async () => {
  const out = join(dir, 'b');
  assert.equal(await runCerts({ out }, ['dev'], io().io), 0);
  const before = readFileSync(join(out, 'ca.pem'), 'utf8');
  const c = io();
  assert.equal(await runCerts({ out }, ['dev'], c.io), 1);
  assert.match(c.err.join('\n'), /refusing to overwrite .*ca\.pem.*use --force/);
  assert.equal(readFileSync(join(out, 'ca.pem'), 'utf8'), before);
  // one existing file is enough to refuse
  const out2 = join(dir, 'b2');
  (await import('node:fs')).mkdirSync(out2);
  writeFileSync(join(out2, 'server-key.pem'), 'mine');
  assert.equal(await runCerts({ out: out2 }, ['dev'], io().io), 1);
  assert.equal(readFileSync(join(out2, 'server-key.pem'), 'utf8'), 'mine');
  assert.equal(await runCerts({ out, force: true }, ['dev'], io().io), 0);
  assert.notEqual(readFileSync(join(out, 'ca.pem'), 'utf8'), before);
});

test('certs dev: a clear error when openssl is missing; usage errors', async () => {
  const path = process.env.PATH;
  process.env.PATH = join(dir, 'empty-path');
  const c = io();
  try {
    assert.equal(await runCerts({ out: join(dir, 'c') }, ['dev'], c.io), 1);
  } finally {
    process.env.PATH = path;
  }
  assert.match(c.err.join('\n'), /openssl command was not found on PATH/);
  await assert.rejects(runCerts({}, [], io().io), UsageError);
  await assert.rejects(runCerts({}, ['prod'], io().io), /unknown subcommand 'prod'/);
  await assert.rejects(runCerts({ names: 'ok.test,bad name' }, ['dev'], io().io), /invalid name "bad name"/);
});

test('the CLI runs `portcullis certs dev`', async () => {
  const out = join(dir, 'cli');
  const run = (args: string[]) => new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawnTracked(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error('timeout')); }, scaled(120_000));
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
  const [ok, usage] = await Promise.all([run(['certs', 'dev', '--out', out, '--names', 'localhost']), run(['certs'])]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /wrote development certificates/);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /missing subcommand/);
});
