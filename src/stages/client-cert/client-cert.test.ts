import { testCompileEnv } from '../../../test/helpers/compile-env.js';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GatewayConfig, ListenerConfig, RouteConfig } from '../../config/schema.js';
import { checkSemantics } from '../../config/semantic.js';
import { RequestContext } from '../../pipeline/context.js';
import { escapeValue, normalizeFingerprint, parseSubjectAltName, peerCertificate, readPeerCertificate, sanAllowKeys } from './identity.js';
import { allowedBy, clientCertStage, compileClientCertPolicy, forwardHeaderNames } from './client-cert.js';

const FP = 'AB:'.repeat(31) + 'AB';

interface FakeCert { subject?: Record<string, string | string[]>; subjectaltname?: string; fingerprint256?: string }
function fakeSocket(opts: { encrypted?: boolean; authorized?: boolean; authorizationError?: Error | string; cert?: FakeCert | null }) {
  let reads = 0;
  const s = {
    encrypted: opts.encrypted ?? true,
    authorized: opts.authorized ?? true,
    authorizationError: opts.authorizationError ?? null,
    getPeerCertificate() {
      reads++;
      if (opts.cert === null) return {};
      const c = opts.cert ?? {};
      return { raw: Buffer.from('x'), subject: c.subject ?? { CN: 'svc-a' }, subjectaltname: c.subjectaltname, fingerprint256: c.fingerprint256 ?? FP };
    },
    get reads() { return reads; },
  };
  return s;
}

function ctxFor(socket: object, fwd: string[] = []): RequestContext {
  const req = { socket, rawHeaders: [], headers: {} } as unknown as IncomingMessage;
  const ctx = new RequestContext(req, {} as ServerResponse, 'mtls', true, 0);
  ctx.plan = { fwd, host: 'h', xff: undefined, via: undefined, peerTrusted: false, bodyLen: 0, maxBody: 0, upgrade: undefined };
  return ctx;
}

describe('peer certificate', () => {
  it('is read once per connection and cached on the socket', () => {
    const s = fakeSocket({});
    const req = { socket: s } as unknown as IncomingMessage;
    const a = peerCertificate(req);
    const b = peerCertificate(req);
    assert.equal(a, b);
    assert.equal(s.reads, 1);
    assert.equal(a.verified, true);
    assert.deepEqual(a.identity, { kind: 'mtls', id: 'svc-a', claims: { subject: 'svc-a', sans: [], fingerprint: FP } });
    assert.ok(Object.isFrozen(a) && Object.isFrozen(a.identity));
  });

  it('caches through a proxy that forwards to the real socket (HTTP/2 compat request.socket)', () => {
    const s = fakeSocket({});
    const proxy = new Proxy(s, {
      get(t, p) { const v = Reflect.get(t, p) as unknown; return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v; },
      set(t, p, v) { return Reflect.set(t, p, v); },
    });
    const first = peerCertificate({ socket: proxy } as unknown as IncomingMessage);
    const again = peerCertificate({ socket: new Proxy(s, {}) } as unknown as IncomingMessage); // another stream, same session socket
    assert.equal(first, again);
    assert.equal(s.reads, 1);
  });

  it('distinguishes no certificate, unverified ones and plain connections', () => {
    assert.equal(readPeerCertificate(fakeSocket({ cert: null, authorized: false })).reason, 'no client certificate');
    const expired = readPeerCertificate(fakeSocket({ authorized: false, authorizationError: Object.assign(new Error('certificate has expired'), { code: 'CERT_HAS_EXPIRED' }) }));
    assert.equal(expired.verified, false);
    assert.equal(expired.reason, 'CERT_HAS_EXPIRED');
    assert.equal(expired.identity, undefined);
    assert.equal(readPeerCertificate(fakeSocket({ authorized: false, authorizationError: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' })).reason, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    assert.equal(readPeerCertificate(fakeSocket({ encrypted: false })).reason, 'not a TLS connection');
  });

  it('uses the fingerprint as id without a (single) CN', () => {
    const pc = readPeerCertificate(fakeSocket({ cert: { subject: { CN: ['a', 'b'] } } }));
    assert.equal(pc.subject, undefined);
    assert.equal(pc.identity?.id, FP);
  });

  it('builds an escaped forward-header value once', () => {
    const pc = readPeerCertificate(fakeSocket({ cert: { subject: { CN: 'a;b=c, d' }, subjectaltname: 'DNS:Svc.Example, URI:spiffe://td/ns/x, email:"a,b@example.com"' } }));
    assert.equal(pc.headerValue, `subject=a%3Bb%3Dc%2C%20d;san=DNS:svc.example,URI:spiffe://td/ns/x,email:a%2Cb@example.com;fingerprint=${FP}`);
    assert.equal(decodeURIComponent('a%3Bb%3Dc%2C%20d'), 'a;b=c, d');
  });
});

describe('subjectAltName parsing', () => {
  it('normalizes types and values, honours JSON-quoted values', () => {
    assert.deepEqual(parseSubjectAltName('DNS:A.example, IP Address:0:0:0:0:0:0:0:1, IP Address:127.0.0.1, URI:"x:/a, b", email:e@x, DirName:CN=x, othername:foo'),
      ['DNS:a.example', 'IP:::1', 'IP:127.0.0.1', 'URI:x:/a, b', 'email:e@x']);
    assert.deepEqual(parseSubjectAltName(undefined), []);
    assert.deepEqual(parseSubjectAltName('DNS:a, DNS:"broken'), [], 'malformed quoting: nothing trusted');
  });
  it('allowlist entries: typed or any type', () => {
    assert.deepEqual(sanAllowKeys('DNS:Svc.Example'), ['DNS:svc.example']);
    assert.deepEqual(sanAllowKeys('uri:spiffe://td/x'), ['URI:spiffe://td/x']);
    assert.deepEqual(sanAllowKeys('IP:::0001'), ['IP:::1']);
    assert.deepEqual(sanAllowKeys('svc.example'), ['DNS:svc.example', 'URI:svc.example', 'email:svc.example']);
    assert.deepEqual(sanAllowKeys('10.0.0.1'), ['DNS:10.0.0.1', 'URI:10.0.0.1', 'email:10.0.0.1', 'IP:10.0.0.1']);
  });
  it('fingerprints normalize to upper-case colon form', () => {
    assert.equal(normalizeFingerprint('ab'.repeat(32)), FP);
    assert.equal(normalizeFingerprint(FP.toLowerCase()), FP);
    assert.equal(normalizeFingerprint('ab'.repeat(31)), undefined);
    assert.equal(normalizeFingerprint('zz'.repeat(32)), undefined);
  });
  it('escapes delimiters, quotes, percent, spaces, controls and non-ASCII', () => {
    assert.equal(escapeValue('plain-Value_1.2~:/@'), 'plain-Value_1.2~:/@');
    assert.equal(escapeValue('a"b\\c%d\r\né'), 'a%22b%5Cc%25d%0D%0A%C3%A9');
  });
});

describe('client-cert stage', () => {
  const run = (cfg: NonNullable<RouteConfig['clientCert']>, socket: object, fwd: string[] = []) => {
    const stage = clientCertStage.compile(cfg, testCompileEnv())!;
    const ctx = ctxFor(socket, fwd);
    const out = stage.onRequest!(ctx);
    return { out: out as { status: number; code: string } | undefined, ctx };
  };

  it('required: refuses a missing or unverified certificate with 403', () => {
    assert.equal(run({ required: true }, fakeSocket({ cert: null }))?.out?.code, 'client-certificate-required');
    assert.equal(run({ required: true }, fakeSocket({ authorized: false, authorizationError: 'CERT_HAS_EXPIRED' })).out?.status, 403);
    assert.equal(run({ required: true }, fakeSocket({ encrypted: false })).out?.code, 'client-certificate-required');
  });

  it('sets the identity and forwards it', () => {
    const fwd: string[] = [];
    const { out, ctx } = run({ required: true, forwardHeader: 'X-Client-Cert' }, fakeSocket({}), fwd);
    assert.equal(out, undefined);
    assert.equal(ctx.identity?.kind, 'mtls');
    assert.equal(ctx.identity?.id, 'svc-a');
    assert.deepEqual(fwd, ['x-client-cert', `subject=svc-a;san=;fingerprint=${FP}`]);
  });

  it('allowlists: every configured list must match', () => {
    const s = () => fakeSocket({ cert: { subject: { CN: 'svc-a' }, subjectaltname: 'DNS:svc-a.internal' } });
    assert.equal(run({ required: true, subjects: ['svc-a'] }, s()).out, undefined);
    assert.equal(run({ required: true, subjects: ['svc-b'] }, s()).out?.code, 'client-certificate-not-allowed');
    assert.equal(run({ required: true, sans: ['DNS:SVC-A.internal'] }, s()).out, undefined);
    assert.equal(run({ required: true, sans: ['URI:svc-a.internal'] }, s()).out?.code, 'client-certificate-not-allowed');
    assert.equal(run({ required: true, fingerprints: ['ab'.repeat(32)] }, s()).out, undefined);
    assert.equal(run({ required: true, fingerprints: ['cd'.repeat(32)] }, s()).out?.status, 403);
    assert.equal(run({ required: true, subjects: ['svc-a'], fingerprints: ['cd'.repeat(32)] }, s()).out?.status, 403);
  });

  it('optional: never refuses, identity only for verified and allowed certificates', () => {
    const none = run({ required: false, forwardHeader: 'x-cc' }, fakeSocket({ cert: null }));
    assert.equal(none.out, undefined);
    assert.equal(none.ctx.identity, undefined);
    assert.deepEqual(none.ctx.plan?.fwd, []);
    const bad = run({ required: false, subjects: ['other'], forwardHeader: 'x-cc' }, fakeSocket({}));
    assert.equal(bad.out, undefined);
    assert.equal(bad.ctx.identity, undefined);
    assert.deepEqual(bad.ctx.plan?.fwd, []);
  });

  it('keeps an identity an earlier stage established', () => {
    const stage = clientCertStage.compile({ required: true }, testCompileEnv())!;
    const ctx = ctxFor(fakeSocket({}));
    ctx.identity = { kind: 'other', id: 'x' };
    stage.onRequest!(ctx);
    assert.equal(ctx.identity.kind, 'other');
  });

  it('allowedBy with no lists accepts any verified certificate', () => {
    assert.equal(allowedBy(compileClientCertPolicy({ required: true }), readPeerCertificate(fakeSocket({}))), true);
  });

  it('collects every forwardHeader name, lower case', () => {
    const routes = [
      { id: 'a', match: {}, respond: { status: 200 }, clientCert: { required: true, forwardHeader: 'X-Client-Cert' } },
      { id: 'b', match: {}, respond: { status: 200 } },
      { id: 'c', match: {}, respond: { status: 200 }, clientCert: { required: false, forwardHeader: 'x-other' } },
    ];
    assert.deepEqual([...forwardHeaderNames(routes)!].sort(), ['x-client-cert', 'x-other']);
    assert.equal(forwardHeaderNames([routes[1]!]), undefined);
  });
});

describe('client-cert semantic checks', () => {
  const mtls: ListenerConfig = { name: 'mtls', port: 8443, tls: { certificates: [{ cert: 'c', key: 'k' }], clientCertificate: { mode: 'request', ca: 'ca.pem' } } };
  const plainL: ListenerConfig = { name: 'http', address: '127.0.0.1', port: 8080, plaintext: { mode: 'serve' } };
  const cfg = (listeners: ListenerConfig[], route: Partial<RouteConfig>): GatewayConfig => ({
    listeners, routes: [{ id: 'r', match: {}, respond: { status: 200 }, ...route }],
  });
  const issues = (c: GatewayConfig) => checkSemantics(c).map((i) => [i.severity, i.path, i.message] as const);
  const paths = (c: GatewayConfig) => issues(c).map(([s, p]) => `${s} ${p}`);

  it('a route with clientCert needs a listener that requests certificates', () => {
    assert.deepEqual(paths(cfg([mtls], { clientCert: { required: true } })), []);
    assert.deepEqual(paths(cfg([plainL], { clientCert: { required: true } })), ['error routes[0].clientCert']);
    assert.deepEqual(paths(cfg([plainL, mtls], { listeners: ['http'], clientCert: { required: false } })), ['error routes[0].clientCert']);
    assert.deepEqual(paths(cfg([plainL, mtls], { listeners: ['mtls'], clientCert: { required: true } })), []);
    assert.deepEqual(paths(cfg([plainL, mtls], { clientCert: { required: true } })), ['warning routes[0].clientCert']);
  });

  it('fingerprints must be SHA-256', () => {
    assert.deepEqual(paths(cfg([mtls], { clientCert: { required: true, fingerprints: ['ab'.repeat(32), 'ab:'.repeat(31) + 'a'] } })), ['error routes[0].clientCert.fingerprints[1]']);
  });

  it('forwardHeader must not be a gateway-owned header nor be rewritten by the route', () => {
    for (const h of ['Host', 'x-forwarded-for', 'Via', 'x-request-id', 'connection', 'content-length']) {
      assert.deepEqual(paths(cfg([mtls], { clientCert: { required: true, forwardHeader: h } })), ['error routes[0].clientCert.forwardHeader'], h);
    }
    assert.deepEqual(paths(cfg([mtls], { clientCert: { required: true, forwardHeader: 'X-Client-Cert' }, requestHeaders: { set: { 'x-client-cert': 'v' }, remove: ['X-CLIENT-CERT'] } })),
      ['error routes[0].requestHeaders.set["x-client-cert"]', 'error routes[0].requestHeaders.remove[0]']);
  });
});
