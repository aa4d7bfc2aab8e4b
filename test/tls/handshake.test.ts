// TLS termination on a listener: protocol versions, cipher policy, SNI, RSA and ECDSA side by side,
// encrypted keys, client certificates, and certificate loading errors. Real handshakes on 127.0.0.1 with
// node:tls and `openssl s_client`.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makePki, type Pki } from '../helpers/certs.js';
import { startTlsGateway, tryHandshake, sClient, handshake, type TlsGateway } from './helpers.js';

let pki: Pki;
before(() => { pki = makePki(); });

describe('TLS 1.3 only (default)', () => {
  let g: TlsGateway;
  before(async () => { g = await startTlsGateway({ certificates: [{ cert: pki.server.cert, key: pki.server.key }] }); });
  after(() => g.close());

  test('TLS 1.3 is accepted, with h2 and http/1.1 offered by ALPN', async () => {
    const h = await tryHandshake(g.port, { ALPNProtocols: ['h2', 'http/1.1'] });
    assert.ok(!('error' in h), JSON.stringify(h));
    assert.equal(h.protocol, 'TLSv1.3');
    assert.equal(h.alpn, 'h2');
    const h1 = await tryHandshake(g.port, { ALPNProtocols: ['http/1.1'] });
    assert.ok(!('error' in h1));
    assert.equal(h1.alpn, 'http/1.1');
  });

  test('TLS 1.2 is refused by default (server alert, not a client limitation)', async () => {
    const r = await tryHandshake(g.port, { maxVersion: 'TLSv1.2' });
    assert.ok('error' in r);
    assert.match(r.error, /protocol version/i);
    const s = await sClient(g.port, ['-tls1_2']);
    assert.equal(s.connected, false, s.output);
    assert.match(s.output, /alert protocol version/);
  });

  test('TLS 1.0 and 1.1 are refused', async () => {
    for (const v of ['TLSv1', 'TLSv1.1'] as const) {
      const r = await tryHandshake(g.port, { minVersion: v, maxVersion: v, ciphers: 'DEFAULT@SECLEVEL=0' });
      assert.ok('error' in r, v);
      assert.match(r.error, /alert protocol version/i, v);
    }
    const s = await sClient(g.port, ['-tls1_1', '-cipher', 'DEFAULT@SECLEVEL=0']);
    assert.equal(s.connected, false);
    assert.match(s.output, /alert protocol version/);
  });

  test('openssl s_client negotiates TLS 1.3 with an AEAD suite', async () => {
    const s = await sClient(g.port, []);
    assert.equal(s.connected, true, s.output);
    assert.equal(s.protocol, 'TLSv1.3');
    assert.match(s.cipher!, /^TLS_(AES_(128|256)_GCM|CHACHA20_POLY1305)_SHA(256|384)$/);
    assert.equal(s.fingerprint256, new (await import('node:crypto')).X509Certificate(pki.server.certPem).fingerprint256);
  });
});

describe('minVersion TLSv1.2', () => {
  let g: TlsGateway;
  before(async () => {
    g = await startTlsGateway({ minVersion: 'TLSv1.2', certificates: [{ cert: pki.serverRsa.cert, key: pki.serverRsa.key }, { cert: pki.server.cert, key: pki.server.key }] });
  });
  after(() => g.close());

  test('TLS 1.2 is accepted with a forward-secret AEAD suite', async () => {
    const s = await sClient(g.port, ['-tls1_2']);
    assert.equal(s.connected, true, s.output);
    assert.equal(s.protocol, 'TLSv1.2');
    assert.match(s.cipher!, /^ECDHE-(RSA|ECDSA)-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$/);
  });

  test('CBC, static-RSA and SHA-1 suites are refused even so', async () => {
    for (const c of ['ECDHE-RSA-AES128-SHA', 'ECDHE-ECDSA-AES256-SHA384', 'AES128-GCM-SHA256', 'DHE-RSA-AES128-GCM-SHA256']) {
      const s = await sClient(g.port, ['-tls1_2', '-cipher', `${c}@SECLEVEL=0`]);
      assert.equal(s.connected, false, `${c} was accepted:\n${s.output}`);
      assert.match(s.output, /handshake failure|no shared cipher/i, c);
    }
  });

  test('TLS 1.1 is still refused', async () => {
    const r = await tryHandshake(g.port, { minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' });
    assert.ok('error' in r);
    assert.match(r.error, /protocol version/i);
  });

  test('RSA and ECDSA side by side: the client gets what it can verify', async () => {
    const ec = await sClient(g.port, ['-tls1_3', '-sigalgs', 'ecdsa_secp256r1_sha256']);
    assert.equal(ec.connected, true, ec.output);
    assert.equal(ec.keyBits, 256);
    const rsa = await sClient(g.port, ['-tls1_3', '-sigalgs', 'rsa_pss_rsae_sha256']);
    assert.equal(rsa.connected, true, rsa.output);
    assert.equal(rsa.keyBits, 2048);
    // TLS 1.2: the suite's authentication decides.
    const ec12 = await tryHandshake(g.port, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' });
    assert.ok(!('error' in ec12));
    assert.equal(ec12.keyType, 'ec');
    const rsa12 = await tryHandshake(g.port, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' });
    assert.ok(!('error' in rsa12));
    assert.equal(rsa12.keyType, 'rsa');
  });
});

describe('SNI', () => {
  let g: TlsGateway;
  before(async () => {
    g = await startTlsGateway({
      certificates: [
        { cert: pki.server.cert, key: pki.server.key },
        { cert: pki.wildcard.cert, key: pki.wildcard.key },
        { cert: pki.other.cert, key: pki.other.key },
        // an explicit name list overrides the certificate's
        { cert: pki.serverEncrypted.cert, key: pki.serverEncrypted.key, passphrase: pki.serverEncrypted.passphrase, serverNames: ['secret.portcullis.test'] },
      ],
    });
  });
  after(() => g.close());

  const fp = async (servername: string | undefined) => {
    const h = await tryHandshake(g.port, servername === undefined ? { servername: '' } : { servername });
    assert.ok(!('error' in h), JSON.stringify(h));
    return h.fingerprint256;
  };
  const fpOf = async (pem: string) => new (await import('node:crypto')).X509Certificate(pem).fingerprint256;

  test('exact name', async () => {
    assert.equal(await fp('other.test'), await fpOf(pki.other.certPem));
    assert.equal(await fp('OTHER.test'), await fpOf(pki.other.certPem));
    assert.equal(await fp('portcullis.test'), await fpOf(pki.server.certPem));
  });

  test('wildcard matches one label only', async () => {
    assert.equal(await fp('api.wild.test'), await fpOf(pki.wildcard.certPem));
    assert.equal(await fp('a.b.wild.test'), await fpOf(pki.server.certPem));
    assert.equal(await fp('wild.test'), await fpOf(pki.server.certPem));
  });

  test('unknown name and no SNI get the first certificate', async () => {
    assert.equal(await fp('unknown.example'), await fpOf(pki.server.certPem));
    assert.equal(await fp(undefined), await fpOf(pki.server.certPem));
  });

  test('configured serverNames and an encrypted key', async () => {
    assert.equal(await fp('secret.portcullis.test'), await fpOf(pki.serverEncrypted.certPem));
  });

  test('openssl s_client -servername picks the same', async () => {
    const s = await sClient(g.port, [], 'api.wild.test');
    assert.equal(s.connected, true);
    assert.equal(s.subject, 'CN = *.wild.test');
  });

  test('certificates() lists what is served', () => {
    const certs = g.gw.tls('main')!.certificates();
    assert.deepEqual(certs.map((c) => c.serverNames), [['localhost', 'portcullis.test'], ['*.wild.test'], ['other.test'], ['secret.portcullis.test']]);
    assert.ok(certs.every((c) => c.notAfter.getTime() > Date.now() && /^[0-9A-F:]{95}$/.test(c.fingerprint256)));
  });
});

describe('client certificates', () => {
  test('require: no certificate, an expired one or another CA\'s is refused at the handshake', async () => {
    const g = await startTlsGateway({ certificates: [{ cert: pki.server.cert, key: pki.server.key }], clientCertificate: { mode: 'require', ca: pki.ca.cert } });
    try {
      const ok = await handshake(g.port, { cert: pki.client.certPem, key: pki.client.keyPem });
      // TLS 1.3: the server's verdict on the client certificate arrives after the client's Finished.
      const verdict = await new Promise<string>((resolve) => {
        ok.socket.on('error', (e) => resolve(e.message));
        ok.socket.write('GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n');
        ok.socket.on('data', () => resolve('answered'));
      });
      ok.socket.destroy();
      assert.equal(verdict, 'answered');
      for (const cert of [undefined, pki.clientExpired, pki.clientOtherCa]) {
        const h = await handshake(g.port, cert === undefined ? {} : { cert: cert.certPem, key: cert.keyPem }).catch((e: Error) => e);
        const outcome = h instanceof Error ? h.message : await new Promise<string>((resolve) => {
          h.socket.on('error', (e) => resolve(e.message));
          h.socket.on('close', () => resolve('closed'));
          h.socket.write('GET / HTTP/1.1\r\nhost: localhost\r\n\r\n');
          h.socket.on('data', () => resolve('answered'));
        });
        assert.notEqual(outcome, 'answered', `client cert ${cert?.cert ?? 'none'} was accepted`);
      }
    } finally {
      await g.close();
    }
  });
});

describe('loading errors stop the start with the path and the reason', () => {
  let dir: string;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'portcullis-tls-err-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const startErr = async (certificates: { cert: string; key: string; passphrase?: string }[], extra: Record<string, unknown> = {}): Promise<string> => {
    try {
      const g = await startTlsGateway({ certificates, ...extra });
      await g.close();
      return 'started';
    } catch (err) {
      return (err as Error).message;
    }
  };

  test('missing file', async () => {
    const msg = await startErr([{ cert: join(dir, 'nope.pem'), key: pki.server.key }]);
    assert.equal(msg, `listeners[0].tls.certificates[0].cert: cannot read ${join(dir, 'nope.pem')}: no such file`);
  });

  test('key does not match the certificate', async () => {
    const msg = await startErr([{ cert: pki.server.cert, key: pki.other.key }]);
    assert.match(msg, /^listeners\[0\]\.tls\.certificates\[0\]\.key: .*other-key\.pem does not match the certificate in .*server\.pem$/);
  });

  test('encrypted key: wrong or missing passphrase', async () => {
    const wrong = await startErr([{ cert: pki.serverEncrypted.cert, key: pki.serverEncrypted.key, passphrase: 'wrong' }]);
    assert.match(wrong, /certificates\[0\]\.key: .*server-encrypted-key\.pem: cannot decrypt the key: wrong passphrase/);
    const missing = await startErr([{ cert: pki.serverEncrypted.cert, key: pki.serverEncrypted.key }]);
    assert.match(missing, /the key is encrypted: set `passphrase`/);
  });

  test('expired certificate', async () => {
    const msg = await startErr([{ cert: pki.serverExpired.cert, key: pki.serverExpired.key }]);
    assert.match(msg, /certificates\[0\]\.cert: .*server-expired\.pem: certificate expired on 2020-02-01T00:00:00\.000Z/);
  });

  test('not PEM', async () => {
    writeFileSync(join(dir, 'garbage.pem'), 'hello');
    const msg = await startErr([{ cert: join(dir, 'garbage.pem'), key: pki.server.key }]);
    assert.match(msg, /certificates\[0\]\.cert: .*garbage\.pem: no PEM certificate in the file/);
  });

  test('weak ciphers are a configuration error naming listeners[i].tls.ciphers', async () => {
    const msg = await startErr([{ cert: pki.server.cert, key: pki.server.key }], { minVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-SHA' });
    assert.match(msg, /^listeners\[0\]\.tls\.ciphers: selects cipher suites without forward secrecy or AEAD: ECDHE-RSA-AES128-SHA\b/);
    const alias = await startErr([{ cert: pki.server.cert, key: pki.server.key }], { minVersion: 'TLSv1.2', ciphers: 'HIGH' });
    assert.match(alias, /^listeners\[0\]\.tls\.ciphers: selects cipher suites without/);
    const unknown = await startErr([{ cert: pki.server.cert, key: pki.server.key }], { ciphers: 'NOT-A-CIPHER' });
    assert.match(unknown, /^listeners\[0\]\.tls\.ciphers: unknown cipher suite or keyword "NOT-A-CIPHER"/);
  });

  test('allowInsecureCiphers lets a weak list through (and it is negotiated)', async () => {
    const g = await startTlsGateway({ certificates: [{ cert: pki.serverRsa.cert, key: pki.serverRsa.key }], minVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES128-GCM-SHA256', allowInsecureCiphers: true });
    try {
      const s = await sClient(g.port, ['-tls1_2', '-cipher', 'ECDHE-RSA-AES128-SHA@SECLEVEL=0']);
      assert.equal(s.connected, true, s.output);
      assert.equal(s.cipher, 'ECDHE-RSA-AES128-SHA');
    } finally {
      await g.close();
    }
  });

  test('relative paths resolve against baseDir', async () => {
    copyFileSync(pki.server.cert, join(dir, 'rel.pem'));
    copyFileSync(pki.server.key, join(dir, 'rel-key.pem'));
    const g = await startTlsGateway({ certificates: [{ cert: 'rel.pem', key: 'rel-key.pem' }] }, { baseDir: dir });
    try {
      const h = await tryHandshake(g.port);
      assert.ok(!('error' in h));
    } finally {
      await g.close();
    }
  });
});
