// Verification keys: which key type each JWS algorithm needs, and turning configured or fetched keys
// into WebCrypto keys bound to one algorithm each. A key is imported once per algorithm it may verify,
// so the (kid, alg) → key table itself enforces "the key type must match the algorithm": an RSA key is
// never an HMAC secret, an HMAC secret never verifies an RS256 token (no algorithm confusion).
import { createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { importJWK, type CryptoKey, type JWK } from 'jose';
import type { JwsAlgorithmName } from '../schema.js';
import { readPem } from './fetch.js';

export type VerifyKey = CryptoKey;

interface KeyRequirement { readonly kty: 'RSA' | 'EC' | 'OKP' | 'oct'; readonly crv?: string; readonly hash?: string }

export const ALG_KEY: Readonly<Record<JwsAlgorithmName, KeyRequirement>> = {
  RS256: { kty: 'RSA' }, RS384: { kty: 'RSA' }, RS512: { kty: 'RSA' },
  PS256: { kty: 'RSA' }, PS384: { kty: 'RSA' }, PS512: { kty: 'RSA' },
  ES256: { kty: 'EC', crv: 'P-256' }, ES384: { kty: 'EC', crv: 'P-384' }, ES512: { kty: 'EC', crv: 'P-521' },
  EdDSA: { kty: 'OKP', crv: 'Ed25519' },
  HS256: { kty: 'oct', hash: 'SHA-256' }, HS384: { kty: 'oct', hash: 'SHA-384' }, HS512: { kty: 'oct', hash: 'SHA-512' },
};

export const isHmac = (alg: string): boolean => alg.startsWith('HS');

/** JWK members that only private (or symmetric) keys have: RSA/EC/OKP, `oth` (multi-prime RSA), `k` (oct), `priv` (AKP). */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'priv'] as const;

/** One list for configured keys, JWKS keys and DPoP proof keys: present at all (even null) counts. */
export function hasPrivateMembers(jwk: Readonly<Record<string, unknown>>): boolean {
  return PRIVATE_MEMBERS.some((m) => Object.hasOwn(jwk, m));
}

/** The public members jose/WebCrypto need; everything else (x5c, x5u, key_ops, ...) is dropped. */
function publicMembers(jwk: Readonly<Record<string, unknown>>): JWK | undefined {
  const s = (k: string): string | undefined => (typeof jwk[k] === 'string' ? jwk[k] : undefined);
  switch (jwk.kty) {
    case 'RSA': { const n = s('n'), e = s('e'); return n && e ? { kty: 'RSA', n, e } : undefined; }
    case 'EC': { const crv = s('crv'), x = s('x'), y = s('y'); return crv && x && y ? { kty: 'EC', crv, x, y } : undefined; }
    case 'OKP': { const crv = s('crv'), x = s('x'); return crv && x ? { kty: 'OKP', crv, x } : undefined; }
    default: return undefined;
  }
}

/** The algorithms among `allowed` this public JWK can verify (its own `alg`, if it names one, restricts them). */
export function algorithmsFor(jwk: Readonly<Record<string, unknown>>, allowed: readonly JwsAlgorithmName[]): JwsAlgorithmName[] {
  const own = typeof jwk.alg === 'string' ? jwk.alg : undefined;
  return allowed.filter((alg) => {
    const req = ALG_KEY[alg];
    if (req.kty === 'oct' || req.kty !== jwk.kty) return false;
    if (req.crv !== undefined && req.crv !== jwk.crv) return false;
    return own === undefined || own === alg;
  });
}

/**
 * Imports a public JWK for every allowed algorithm it fits. Returns an empty map when it fits none.
 * Throws on a private key or an unusable key (callers decide: refuse the config, or skip the key).
 */
export async function importPublicJwk(jwk: Readonly<Record<string, unknown>>, allowed: readonly JwsAlgorithmName[]): Promise<Map<JwsAlgorithmName, VerifyKey>> {
  if (hasPrivateMembers(jwk)) throw new Error('private or symmetric key material is not accepted here');
  const out = new Map<JwsAlgorithmName, VerifyKey>();
  const algs = algorithmsFor(jwk, allowed);
  if (algs.length === 0) return out;
  const pub = publicMembers(jwk);
  if (pub === undefined) throw new Error(`incomplete ${String(jwk.kty)} public key`);
  for (const alg of algs) out.set(alg, await importJWK(pub, alg) as VerifyKey);
  return out;
}

/** HMAC key bound to one hash (HS256 → SHA-256); usable for nothing but verifying that MAC. */
export async function importHmacSecret(secret: Uint8Array, alg: JwsAlgorithmName): Promise<VerifyKey> {
  const hash = ALG_KEY[alg].hash;
  if (hash === undefined) throw new Error(`${alg} is not an HMAC algorithm`);
  return crypto.subtle.importKey('raw', secret, { name: 'HMAC', hash }, false, ['verify']) as Promise<VerifyKey>;
}

const B64URL = /^[A-Za-z0-9_-]+={0,2}$/;
export const MIN_SECRET_BYTES = 32;

/** Decodes a configured HMAC secret (base64url). Throws when it is not base64url or shorter than 32 bytes. */
export function decodeSecret(secret: string): Uint8Array {
  const s = secret.trim();
  if (!B64URL.test(s)) throw new Error('HMAC secret must be base64url-encoded');
  const bytes = Buffer.from(s, 'base64url');
  if (bytes.length < MIN_SECRET_BYTES) throw new Error(`HMAC secret must be at least ${MIN_SECRET_BYTES} bytes (it has ${bytes.length})`);
  return new Uint8Array(bytes);
}

/**
 * A PEM public key or certificate (inline or a file) as a public JWK. Private keys are refused: the
 * gateway only verifies, and a private key in its config is a key that leaked.
 */
export function pemToPublicJwk(pem: string, baseDir: string): Record<string, unknown> {
  const text = readPem(pem, baseDir);
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) throw new Error('PEM holds a private key: configure the public key or certificate instead');
  let key: KeyObject;
  if (text.includes('-----BEGIN CERTIFICATE-----')) key = new X509Certificate(text).publicKey;
  else key = createPublicKey({ key: text, format: 'pem' });
  if (key.asymmetricKeyType === 'rsa-pss') throw new Error('RSA-PSS restricted keys are not supported: use an rsaEncryption (plain RSA) public key for PS* algorithms');
  return key.export({ format: 'jwk' }) as Record<string, unknown>;
}
