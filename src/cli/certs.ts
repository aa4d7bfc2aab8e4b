// `portcullis certs dev`: a development CA, a server certificate for local names, and a client
// certificate (for mTLS experiments), made with the `openssl` CLI. Never for production.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { PROGRAM, UsageError, type OptionValues } from './args.js';

export interface CertsIo {
  out(line: string): void;
  err(line: string): void;
}

export const DEV_FILES = ['ca.pem', 'ca-key.pem', 'server.pem', 'server-key.pem', 'client.pem', 'client-key.pem'] as const;

const DNS_NAME = /^(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

const CNF = `
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = unused
[ ca_ext ]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[ server_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ client_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;

/** Parses `--names`: DNS names (or *.wildcards) and IP addresses. */
export function parseNames(raw: string): string[] {
  const names = raw.split(',').map((n) => n.trim()).filter((n) => n !== '');
  if (names.length === 0) throw new UsageError('--names needs at least one name', `${PROGRAM} certs --help`);
  for (const n of names) {
    if (isIP(n) === 0 && !DNS_NAME.test(n)) throw new UsageError(`invalid name ${JSON.stringify(n)} in --names (a DNS name, *.wildcard or IP address)`, `${PROGRAM} certs --help`);
  }
  return names;
}

class OpenSslMissing extends Error {}

function openssl(cwd: string, args: string[]): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: Buffer };
    if (err.code === 'ENOENT') throw new OpenSslMissing();
    const detail = err.stderr?.toString().trim().split('\n').slice(-2).join(' ') || err.message;
    throw new Error(`openssl ${args[0] ?? ''} failed: ${detail}`);
  }
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-noenc'];

/** Makes the files in a temporary directory (so a failure leaves nothing half-written), then copies them to `out`. */
function generate(out: string, names: readonly string[]): void {
  const work = mkdtempSync(join(tmpdir(), 'portcullis-certs-'));
  try {
    writeFileSync(join(work, 'openssl.cnf'), CNF);
    const san = names.map((n) => (isIP(n) !== 0 ? `IP:${n}` : `DNS:${n}`)).join(',');
    openssl(work, ['req', '-x509', '-config', 'openssl.cnf', ...EC, '-keyout', 'ca-key.pem', '-out', 'ca.pem', '-days', '3650',
      '-subj', '/CN=Portcullis Development CA', '-extensions', 'ca_ext']);
    openssl(work, ['req', '-x509', '-config', 'openssl.cnf', ...EC, '-keyout', 'server-key.pem', '-out', 'server.pem', '-days', '397',
      '-subj', `/CN=${names[0]!}`, '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-extensions', 'server_ext', '-addext', `subjectAltName=${san}`]);
    openssl(work, ['req', '-x509', '-config', 'openssl.cnf', ...EC, '-keyout', 'client-key.pem', '-out', 'client.pem', '-days', '397',
      '-subj', '/CN=dev-client', '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-extensions', 'client_ext']);
    mkdirSync(out, { recursive: true });
    for (const f of DEV_FILES) {
      copyFileSync(join(work, f), join(out, f));
      chmodSync(join(out, f), f.endsWith('-key.pem') ? 0o600 : 0o644);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export async function runCerts(values: OptionValues, positionals: readonly string[], io: CertsIo): Promise<number> {
  const sub = positionals[0];
  if (sub === undefined) throw new UsageError('missing subcommand (only `dev` exists)', `${PROGRAM} certs --help`);
  if (sub !== 'dev') throw new UsageError(`unknown subcommand '${sub}' (only \`dev\` exists)`, `${PROGRAM} certs --help`);
  const out = resolve(typeof values.out === 'string' ? values.out : 'certs');
  const names = parseNames(typeof values.names === 'string' ? values.names : 'localhost,127.0.0.1');
  const existing = DEV_FILES.filter((f) => existsSync(join(out, f)));
  if (existing.length > 0 && values.force !== true) {
    io.err(`${PROGRAM}: refusing to overwrite ${existing.map((f) => join(out, f)).join(', ')} (use --force to replace them)`);
    return 1;
  }
  try {
    generate(out, names);
  } catch (e) {
    if (e instanceof OpenSslMissing) {
      io.err(`${PROGRAM}: the openssl command was not found on PATH; install OpenSSL (e.g. apt-get install openssl, brew install openssl) and retry`);
      return 1;
    }
    throw e;
  }
  const server = new X509Certificate(readFileSync(join(out, 'server.pem'), 'utf8'));
  const until = new Date(Date.parse(server.validTo)).toISOString().slice(0, 10);
  const rel = (f: string) => join(out, f);
  io.out(`wrote development certificates to ${out} (not for production):`);
  io.out(`  ${rel('ca.pem')}          CA certificate: trust it in clients (curl --cacert ${rel('ca.pem')})`);
  io.out(`  ${rel('ca-key.pem')}      CA private key: keep it private; anyone with it can impersonate any name to clients that trust the CA`);
  io.out(`  ${rel('server.pem')}      server certificate for ${names.join(', ')}, valid until ${until}`);
  io.out(`  ${rel('server-key.pem')}  its private key`);
  io.out(`  ${rel('client.pem')}      client certificate (CN=dev-client) for mTLS tests, with ${rel('client-key.pem')}`);
  io.out('');
  io.out('listener configuration:');
  io.out('');
  io.out('listeners:');
  io.out('  - name: https');
  io.out('    address: 127.0.0.1');
  io.out('    port: 8443');
  io.out('    tls:');
  io.out('      certificates:');
  io.out(`        - cert: ${rel('server.pem')}`);
  io.out(`          key: ${rel('server-key.pem')}`);
  io.out(`      # clientCertificate: { mode: require, ca: ${rel('ca.pem')} }`);
  return 0;
}

