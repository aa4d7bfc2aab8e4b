// A real OpenID provider (oidc-provider) for identity tests: discovery, JWKS, client-credentials tokens
// (JWT access tokens when a resource indicator is given, opaque ones otherwise) and RFC 7662
// introspection. One http.Server on an ephemeral port; rotate() swaps in a new Provider instance with a
// new signing key first and the old one still published (overlap), so the issuer URL never changes.
// Tokens live in one store per IdP shared by its Provider instances, so opaque tokens survive a rotation.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
// @ts-expect-error oidc-provider (a dev dependency) ships no type declarations
import { Provider as UntypedProvider } from 'oidc-provider';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload, type JWTHeaderParameters, type CryptoKey } from 'jose';

export interface SigningKey {
  readonly kid: string;
  readonly alg: 'RS256' | 'ES256';
  readonly privateKey: CryptoKey;
  /** public JWK with kid, alg, use */
  readonly publicJwk: JWK;
  /** private JWK for oidc-provider's keystore */
  readonly privateJwk: JWK;
}

let kidCounter = 0;

export async function newSigningKey(alg: 'RS256' | 'ES256' = 'RS256', kid = `k${++kidCounter}-${Date.now().toString(36)}`): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg, use: 'sig' };
  return { kid, alg, privateKey, publicJwk, privateJwk };
}

/** Signs any payload with `key` (tests craft expired, future, tampered ... tokens with the IdP's own key). */
export async function signWith(key: SigningKey, payload: JWTPayload, header: Partial<JWTHeaderParameters> = {}): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', ...header }).sign(key.privateKey);
}

export const CLIENT_ID = 'api-client';
export const CLIENT_SECRET = 'api-client-secret-0123456789abcdefghijklmnop';
/** the gateway's own client, used to call the introspection endpoint */
export const GATEWAY_CLIENT_ID = 'gateway';
export const GATEWAY_CLIENT_SECRET = 'gateway-secret-0123456789abcdefghijklmnopqrs';
export const RESOURCE = 'https://api.example.test';

export interface TestIdp {
  readonly issuer: string;
  readonly port: number;
  /** requests seen per path (/jwks, /.well-known/openid-configuration, /token, /token/introspection) */
  readonly hits: Map<string, number>;
  hitsOf(path: string): number;
  /** current signing key (first in the published JWKS) */
  signingKey(): SigningKey;
  /** every published key, signing key first */
  published(): readonly SigningKey[];
  /** client-credentials JWT access token (audience RESOURCE) */
  jwtAccessToken(scope?: string): Promise<string>;
  /** client-credentials opaque access token (for introspection) */
  opaqueAccessToken(scope?: string): Promise<string>;
  /** new signing key; the previous keys stay published unless `dropOld` */
  rotate(opts?: { dropOld?: boolean }): Promise<SigningKey>;
  /** while true, every request gets a 503 (IdP down) */
  down: boolean;
  close(): Promise<void>;
}

/** The little of oidc-provider's API this helper uses. */
interface OidcProvider {
  callback(): http.RequestListener;
  on(event: string, listener: (...args: unknown[]) => void): void;
}
const Provider = UntypedProvider as new (issuer: string, configuration: Record<string, unknown>) => OidcProvider;

type Stored = { payload: Record<string, unknown>; expiresAt: number };

/** oidc-provider's storage adapter contract, in memory, one Map per IdP (its own default is process-wide and warns). */
function memoryAdapter(store: Map<string, Stored>) {
  return class MemoryAdapter {
    constructor(private readonly model: string) {}
    private k(id: string): string { return `${this.model}:${id}`; }
    async upsert(id: string, payload: Record<string, unknown>, expiresIn: number): Promise<void> {
      store.set(this.k(id), { payload, expiresAt: Date.now() + expiresIn * 1000 });
    }
    async find(id: string): Promise<Record<string, unknown> | undefined> {
      const e = store.get(this.k(id));
      if (e === undefined || e.expiresAt <= Date.now()) return undefined;
      return e.payload;
    }
    async findByUserCode(): Promise<undefined> { return undefined; }
    async findByUid(): Promise<undefined> { return undefined; }
    async consume(id: string): Promise<void> {
      const e = store.get(this.k(id));
      if (e !== undefined) e.payload = { ...e.payload, consumed: Math.floor(Date.now() / 1000) };
    }
    async destroy(id: string): Promise<void> { store.delete(this.k(id)); }
    async revokeByGrantId(grantId: string): Promise<void> {
      for (const [k, e] of store) if (e.payload.grantId === grantId) store.delete(k);
    }
  };
}

function createProvider(issuer: string, keys: readonly SigningKey[], store: Map<string, Stored>): OidcProvider {
  return new Provider(issuer, {
    adapter: memoryAdapter(store),
    clients: [
      { client_id: CLIENT_ID, client_secret: CLIENT_SECRET, grant_types: ['client_credentials'], response_types: [], redirect_uris: [], scope: 'read write' },
      { client_id: GATEWAY_CLIENT_ID, client_secret: GATEWAY_CLIENT_SECRET, grant_types: [], response_types: [], redirect_uris: [] },
    ],
    jwks: { keys: keys.map((k) => k.privateJwk) },
    scopes: ['read', 'write'],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      // any authenticated client may introspect (the gateway's client does)
      introspection: { enabled: true, allowedPolicy: () => true },
      resourceIndicators: {
        enabled: true,
        defaultResource: (_ctx: unknown, _client: unknown, oneOf: string | undefined) => oneOf,
        useGrantedResource: () => false,
        getResourceServerInfo: () => ({
          audience: RESOURCE,
          scope: 'read write',
          accessTokenFormat: 'jwt',
          accessTokenTTL: 300,
          jwt: { sign: { alg: keys[0]!.alg } },
        }),
      },
    },
    ttl: { ClientCredentials: 300 },
  });
}

export async function startIdp(opts: { alg?: 'RS256' | 'ES256' } = {}): Promise<TestIdp> {
  let keys: SigningKey[] = [await newSigningKey(opts.alg ?? 'RS256')];
  const hits = new Map<string, number>();
  const store = new Map<string, Stored>();
  let handler: http.RequestListener | undefined;
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    if (idp.down) { res.writeHead(503, { 'content-type': 'text/plain' }); res.end('down'); return; }
    handler!(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const issuer = `http://127.0.0.1:${port}`;
  const install = (): void => {
    const p = createProvider(issuer, keys, store);
    // oidc-provider reports every refused request on the server_error/…_error events; tests read statuses instead
    p.on('server_error', () => {});
    handler = p.callback();
  };
  install();

  async function token(resource: string | undefined, scope: string): Promise<string> {
    const body = new URLSearchParams({ grant_type: 'client_credentials', scope });
    if (resource !== undefined) body.set('resource', resource);
    const r = await fetch(`${issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}` },
      body,
    });
    const json = await r.json() as { access_token?: string; error?: string; error_description?: string };
    if (json.access_token === undefined) throw new Error(`token request failed: ${r.status} ${json.error ?? ''} ${json.error_description ?? ''}`);
    return json.access_token;
  }

  const idp: TestIdp = {
    issuer,
    port,
    hits,
    hitsOf: (path) => hits.get(path) ?? 0,
    signingKey: () => keys[0]!,
    published: () => keys,
    jwtAccessToken: (scope = 'read') => token(RESOURCE, scope),
    opaqueAccessToken: (scope = 'read') => token(undefined, scope),
    async rotate(o = {}) {
      const next = await newSigningKey(keys[0]!.alg);
      keys = o.dropOld === true ? [next] : [next, ...keys];
      install();
      return next;
    },
    down: false,
    close: () => new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); }),
  };
  return idp;
}

