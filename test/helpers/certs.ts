// A throw-away PKI for TLS tests, made with the `openssl` CLI (no hand-rolled ASN.1).
//
//   const pki = makePki();            // generated once per process (~0.5 s), cached
//   pki.server.cert / .key / .certPem / .keyPem
//
// Contents (all signed by `pki.ca` unless noted; SANs are DNS:localhost, DNS:portcullis.test,
// IP:127.0.0.1 unless noted):
//   ca, otherCa            two unrelated self-signed CAs (ECDSA P-256)
//   server                 ECDSA P-256 server certificate
//   serverRsa              RSA 2048 server certificate, same names
//   serverEncrypted        ECDSA server certificate whose key is encrypted (passphrase in .passphrase)
//   serverExpired          ECDSA server certificate valid Jan 2020 - Feb 2020
//   wildcard               ECDSA, SAN DNS:*.wild.test
//   other                  ECDSA, SAN DNS:other.test
//   serverOtherCa          ECDSA server certificate (standard names) signed by otherCa
//   client                 client certificate (CN=client, extendedKeyUsage clientAuth)
//   clientExpired          expired client certificate
//   clientOtherCa          client certificate signed by otherCa
// `pki.issue({...})` signs more certificates on demand (e.g. a "renewed" one for reload tests).
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export interface CertFiles {
  /** Path of the PEM certificate. */
  cert: string;
  /** Path of the PEM private key. */
  key: string;
  certPem: string;
  keyPem: string;
}
export interface EncryptedCertFiles extends CertFiles { passphrase: string }

export interface IssueOptions {
  /** File base name inside the PKI dir (or `dir`): writes NAME.pem and NAME-key.pem. */
  name: string;
  /** SAN entries; IPs are detected. Default: localhost, portcullis.test, 127.0.0.1. */
  names?: string[];
  /** Subject CN (default: the first name, or NAME). */
  cn?: string;
  keyType?: 'ec' | 'rsa';
  usage?: 'server' | 'client';
  /** Signing CA (default: pki.ca). */
  issuer?: CertFiles;
  /** Validity in days from now (default 30). */
  days?: number;
  /** Backdated validity that ended in 2020. */
  expired?: boolean;
  /** Encrypt the private key with this passphrase. */
  passphrase?: string;
  /** Write into this directory instead of the PKI dir. */
  dir?: string;
}

export interface Pki {
  dir: string;
  ca: CertFiles;
  otherCa: CertFiles;
  server: CertFiles;
  serverRsa: CertFiles;
  serverEncrypted: EncryptedCertFiles;
  serverExpired: CertFiles;
  serverOtherCa: CertFiles;
  wildcard: CertFiles;
  other: CertFiles;
  client: CertFiles;
  clientExpired: CertFiles;
  clientOtherCa: CertFiles;
  /** The default SAN names of server certificates. */
  names: string[];
  issue(opts: IssueOptions & { passphrase: string }): EncryptedCertFiles;
  issue(opts: IssueOptions): CertFiles;
}

export const DEFAULT_NAMES = ['localhost', 'portcullis.test', '127.0.0.1'];

const OPENSSL_CNF = `
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = unused
[ ca_ext ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[ server_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ client_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ ca ]
default_ca = backdate
[ backdate ]
database = index.txt
new_certs_dir = newcerts
serial = serial
default_md = sha256
policy = any
unique_subject = no
copy_extensions = copy
[ any ]
commonName = supplied
`;

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;
const san = (names: string[]): string => names.map((n) => (IPV4.test(n) || n.includes(':') ? `IP:${n}` : `DNS:${n}`)).join(',');

function openssl(cwd: string, args: string[]): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`openssl ${args[0] ?? ''} failed: ${err.stderr?.toString() ?? err.message}`);
  }
}

function keyArgs(type: 'ec' | 'rsa'): string[] {
  return type === 'rsa' ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
}

function readPair(cert: string, key: string): CertFiles {
  return { cert, key, certPem: readFileSync(cert, 'utf8'), keyPem: readFileSync(key, 'utf8') };
}

function makeCa(dir: string, name: string, cn: string): CertFiles {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}-key.pem`);
  openssl(dir, ['req', '-x509', '-config', 'openssl.cnf', ...keyArgs('ec'), '-noenc', '-keyout', key, '-out', cert,
    '-days', '3650', '-subj', `/CN=${cn}`, '-extensions', 'ca_ext']);
  return readPair(cert, key);
}

function issueIn(pkiDir: string, defaultIssuer: CertFiles, o: IssueOptions): CertFiles | EncryptedCertFiles {
  const dir = o.dir ?? pkiDir;
  mkdirSync(dir, { recursive: true });
  const cert = join(dir, `${o.name}.pem`);
  const key = join(dir, `${o.name}-key.pem`);
  const names = o.names ?? (o.usage === 'client' ? [] : DEFAULT_NAMES);
  const cn = o.cn ?? names[0] ?? o.name;
  const issuer = o.issuer ?? defaultIssuer;
  const ext = o.usage === 'client' ? 'client_ext' : 'server_ext';
  const keyEnc = o.passphrase !== undefined ? ['-passout', `pass:${o.passphrase}`] : ['-noenc'];
  const sanArgs = names.length > 0 ? ['-addext', `subjectAltName=${san(names)}`] : [];
  const cnf = join(pkiDir, 'openssl.cnf');
  if (o.expired) {
    // `req -x509` cannot backdate; `openssl ca` can (-startdate/-enddate).
    const csr = join(dir, `${o.name}.csr`);
    openssl(pkiDir, ['req', '-new', '-config', cnf, ...keyArgs(o.keyType ?? 'ec'), ...keyEnc, '-keyout', key, '-out', csr,
      '-subj', `/CN=${cn}`, ...sanArgs]);
    openssl(pkiDir, ['ca', '-batch', '-config', cnf, '-notext', '-cert', issuer.cert, '-keyfile', issuer.key,
      '-startdate', '20200101000000Z', '-enddate', '20200201000000Z', '-extensions', ext, '-in', csr, '-out', cert]);
    rmSync(csr, { force: true });
  } else {
    openssl(pkiDir, ['req', '-x509', '-config', cnf, ...keyArgs(o.keyType ?? 'ec'), ...keyEnc, '-keyout', key, '-out', cert,
      '-days', String(o.days ?? 30), '-subj', `/CN=${cn}`, '-CA', issuer.cert, '-CAkey', issuer.key,
      '-extensions', ext, ...sanArgs]);
  }
  const files = readPair(cert, key);
  return o.passphrase !== undefined ? { ...files, passphrase: o.passphrase } : files;
}

const cache = new Map<string, Pki>();

/**
 * Creates (once per process and directory) a test PKI. Without `dir` a temporary directory is
 * used and removed when the process exits.
 */
export function makePki(dir?: string): Pki {
  const key = dir === undefined ? '' : resolve(dir);
  const cached = cache.get(key);
  if (cached) return cached;
  let root: string;
  if (dir === undefined) {
    root = mkdtempSync(join(tmpdir(), 'portcullis-pki-'));
    process.once('exit', () => { try { rmSync(root, { recursive: true, force: true }); } catch { /* best effort */ } });
  } else {
    root = resolve(dir);
    mkdirSync(root, { recursive: true });
  }
  writeFileSync(join(root, 'openssl.cnf'), OPENSSL_CNF);
  mkdirSync(join(root, 'newcerts'), { recursive: true });
  if (!existsSync(join(root, 'index.txt'))) writeFileSync(join(root, 'index.txt'), '');
  writeFileSync(join(root, 'serial'), `${Date.now().toString(16).padStart(16, '0')}\n`);

  const ca = makeCa(root, 'ca', 'Portcullis Test CA');
  const otherCa = makeCa(root, 'other-ca', 'Unrelated Test CA');
  const issue = ((o: IssueOptions) => issueIn(root, ca, o)) as Pki['issue'];
  const pki: Pki = {
    dir: root,
    ca,
    otherCa,
    names: [...DEFAULT_NAMES],
    server: issue({ name: 'server' }),
    serverRsa: issue({ name: 'server-rsa', keyType: 'rsa' }),
    serverEncrypted: issue({ name: 'server-encrypted', passphrase: 'correct horse battery staple' }),
    serverExpired: issue({ name: 'server-expired', expired: true }),
    serverOtherCa: issue({ name: 'server-other-ca', issuer: otherCa }),
    wildcard: issue({ name: 'wildcard', names: ['*.wild.test'] }),
    other: issue({ name: 'other', names: ['other.test'] }),
    client: issue({ name: 'client', usage: 'client', cn: 'client' }),
    clientExpired: issue({ name: 'client-expired', usage: 'client', cn: 'expired-client', expired: true }),
    clientOtherCa: issue({ name: 'client-other-ca', usage: 'client', cn: 'stranger', issuer: otherCa }),
    issue,
  };
  cache.set(key, pki);
  return pki;
}

/** base64 SHA-256 of the certificate's SubjectPublicKeyInfo (DER) — the format of `upstreams.*.tls.pins`. */
export function spkiPin(certPem: string): string {
  const der = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('base64');
}

/** Colon-separated upper-case SHA-256 fingerprint, as node's `X509Certificate.fingerprint256`. */
export function fingerprint256(certPem: string): string {
  return new X509Certificate(certPem).fingerprint256;
}

/** The first certificate of a PEM bundle. */
export function firstPem(pem: string): string {
  const m = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/);
  if (!m) throw new Error('no certificate in PEM');
  return m[0];
}
