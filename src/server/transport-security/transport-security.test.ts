import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { GatewayConfig, ListenerConfig } from '../../config/schema.js';
import { checkSemantics } from '../../config/semantic.js';
import { compileHsts } from './hsts.js';
import { certificateDnsNames, compilePlaintextPolicy, knownHostNames, redirectHost, redirectLocation, resolvePlaintextMode } from './plaintext.js';
import { compileTransportSecurity } from './index.js';

const tls = { certificates: [{ cert: 'c.pem', key: 'k.pem' }] };
const plain: ListenerConfig = { name: 'http', port: 80 };
const secure: ListenerConfig = { name: 'https', port: 443, tls };

function cfg(listeners: ListenerConfig[], hosts: string[][] = [['api.example.com']]): GatewayConfig {
  return {
    listeners,
    routes: hosts.map((h, i) => ({ id: `r${i}`, match: { hosts: h }, respond: { status: 200 } })),
  };
}

describe('compileHsts', () => {
  it('defaults to one year with includeSubDomains on TLS listeners', () => {
    assert.equal(compileHsts(secure), 'max-age=31536000; includeSubDomains');
  });
  it('is configurable', () => {
    assert.equal(compileHsts({ ...secure, hsts: { maxAge: 600, includeSubDomains: false } }), 'max-age=600');
    assert.equal(compileHsts({ ...secure, hsts: { maxAge: 63072000, preload: true } }), 'max-age=63072000; includeSubDomains; preload');
    assert.equal(compileHsts({ ...secure, hsts: { maxAge: 0 } }), 'max-age=0; includeSubDomains');
  });
  it('is never sent by plain listeners, or when disabled', () => {
    assert.equal(compileHsts(plain), undefined);
    assert.equal(compileHsts({ ...plain, hsts: { maxAge: 100 } }), undefined);
    assert.equal(compileHsts({ ...secure, hsts: false }), undefined);
  });
});

describe('plaintext mode', () => {
  it('defaults to serve without TLS listeners and to redirect with one', () => {
    assert.equal(resolvePlaintextMode(plain, cfg([plain])), 'serve');
    assert.equal(resolvePlaintextMode(plain, cfg([plain, secure])), 'redirect');
    assert.equal(resolvePlaintextMode({ ...plain, plaintext: { mode: 'serve' } }, cfg([plain, secure])), 'serve');
    assert.equal(resolvePlaintextMode({ ...plain, plaintext: { mode: 'reject' } }, cfg([plain])), 'reject');
    assert.equal(resolvePlaintextMode(secure, cfg([plain, secure])), 'serve');
  });

  it('compiles no policy for serving listeners (the serve path checks one property)', () => {
    const c = cfg([plain]);
    assert.equal(compilePlaintextPolicy(plain, c, knownHostNames(c)), undefined);
    const t = compileTransportSecurity(c)(plain);
    assert.deepEqual(t, { hsts: undefined, plaintext: undefined });
  });

  it('knows route hosts (ports dropped, trailing dots, wildcards) and certificate names', () => {
    const c = cfg([plain, { ...secure, tls: { certificates: [{ cert: 'a.pem', key: 'k', serverNames: ['tls.example', '*.wild.example'] }, { cert: 'b.pem', key: 'k' }] } }],
      [['API.Example.com:8443', 'b.example.'], ['*.svc.example']]);
    const read: string[] = [];
    const k = knownHostNames(c, (f) => { read.push(f); return ['from-cert.example']; });
    assert.deepEqual([...k.exact].sort(), ['api.example.com', 'b.example', 'from-cert.example', 'tls.example']);
    assert.deepEqual(k.suffixes, ['.wild.example', '.svc.example']);
    assert.deepEqual(read, ['b.pem'], 'certificate files are read only without serverNames');
  });

  it('reads DNS names (else the CN) out of a certificate', () => {
    assert.deepEqual(certificateDnsNames('DNS:a.example, IP Address:127.0.0.1, DNS:*.b.example', 'CN=x'), ['a.example', '*.b.example']);
    assert.deepEqual(certificateDnsNames(undefined, 'O=Org\nCN=only.example'), ['only.example']);
  });

  describe('redirect host', () => {
    const p = { exact: new Set(['good.example', '127.0.0.1']), suffixes: ['.good'] };
    it('accepts configured names, case and trailing dot folded, port dropped', () => {
      assert.equal(redirectHost(p, 'good.example'), 'good.example');
      assert.equal(redirectHost(p, 'GOOD.Example.:8080'), 'good.example');
      assert.equal(redirectHost(p, 'a.good'), 'a.good');
      assert.equal(redirectHost(p, 'a.b.good:80'), 'a.b.good');
      assert.equal(redirectHost(p, '127.0.0.1:8080'), '127.0.0.1');
    });
    it('refuses anything else', () => {
      for (const h of ['evil.example', 'good.evil.example', 'good.example.evil', 'evilgood', 'good', '.good', 'a..good', '-a.good',
        'evil.example@good.example', 'good.example@evil', '%67ood.example', 'good.example%2f', 'a_b.good', '[::1]', '[::1]:80', '', ':80']) {
        assert.equal(redirectHost(p, h), undefined, h);
      }
    });
  });

  it('builds the location from the normalized path, re-encoded, and the query', () => {
    const p = { mode: 'redirect' as const, portSuffix: '', exact: new Set<string>(), suffixes: [] };
    assert.equal(redirectLocation(p, 'a.example', '/b', ''), 'https://a.example/b');
    assert.equal(redirectLocation(p, 'a.example', '/a b/é"<', 'x=1&y=%20'), 'https://a.example/a%20b/%C3%A9%22%3C?x=1&y=%20');
    assert.equal(redirectLocation({ ...p, portSuffix: ':8443' }, 'a.example', '/', ''), 'https://a.example:8443/');
    const c = cfg([{ ...plain, plaintext: { mode: 'redirect', httpsPort: 8443 } }]);
    assert.equal(compileTransportSecurity(c)(c.listeners[0]!).plaintext?.portSuffix, ':8443');
    const d = cfg([{ ...plain, plaintext: { mode: 'redirect', httpsPort: 443 } }]);
    assert.equal(compileTransportSecurity(d)(d.listeners[0]!).plaintext?.portSuffix, '');
  });
});

describe('semantic checks', () => {
  const issues = (c: GatewayConfig) => checkSemantics(c).map((i) => [i.severity, i.path, i.message] as const);
  it('accepts the defaults', () => {
    assert.deepEqual(issues(cfg([plain, { ...secure, port: 8443 }])), []);
  });
  it('preload requires includeSubDomains and a max-age of a year', () => {
    const c = cfg([{ ...secure, hsts: { maxAge: 600, includeSubDomains: false, preload: true } }]);
    assert.deepEqual(issues(c).map(([s, p]) => [s, p]), [['error', 'listeners[0].hsts.preload'], ['error', 'listeners[0].hsts.preload']]);
    assert.deepEqual(issues(cfg([{ ...secure, hsts: { preload: true } }])), []);
  });
  it('plaintext belongs to plain listeners; hsts to TLS ones', () => {
    assert.deepEqual(issues(cfg([{ ...secure, plaintext: { mode: 'reject' } }])).map(([s, p]) => [s, p]), [['error', 'listeners[0].plaintext']]);
    assert.deepEqual(issues(cfg([{ ...plain, hsts: {} }])).map(([s, p]) => [s, p]), [['warning', 'listeners[0].hsts']]);
  });
  it('warns when a public plain listener serves while TLS listeners exist', () => {
    const serving = { ...plain, plaintext: { mode: 'serve' as const } };
    assert.deepEqual(issues(cfg([serving, { ...secure, port: 8443 }])).map(([s, p]) => [s, p]), [['warning', 'listeners[0].plaintext.mode']]);
    assert.deepEqual(issues(cfg([{ ...serving, address: '127.0.0.1' }, { ...secure, port: 8443 }])), [], 'loopback sidecar listener');
    assert.deepEqual(issues(cfg([serving])), [], 'no TLS listener: serving is the only option');
  });
  it('routes may not set Strict-Transport-Security', () => {
    const c = cfg([plain]);
    c.routes[0]!.responseHeaders = { set: { 'Strict-Transport-Security': 'max-age=1' }, add: { 'strict-transport-security': 'x' }, remove: ['strict-transport-security'] };
    assert.deepEqual(issues(c).map(([s, p]) => [s, p]), [
      ['error', 'routes[0].responseHeaders.set["Strict-Transport-Security"]'],
      ['error', 'routes[0].responseHeaders.add["strict-transport-security"]'],
      ['warning', 'routes[0].responseHeaders.remove[0]'],
    ]);
  });
  it('warns about an httpsPort that is not used', () => {
    assert.deepEqual(issues(cfg([{ ...plain, plaintext: { mode: 'reject', httpsPort: 8443 } }])).map(([s, p]) => [s, p]), [['warning', 'listeners[0].plaintext.httpsPort']]);
  });
});
