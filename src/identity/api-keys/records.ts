// The in-memory form of an API key, built once (at config compile, or when the store reports a change)
// so that a request only compares numbers, strings and a prepared CIDR matcher.
import type { ConfigApiKeySchema } from '../schema.js';
import type { Static } from '@sinclair/typebox';
import { parseCidrList, type IpMatcher } from '../../net/cidr.js';
import { digestOfHash, HASH_PREFIX } from './format.js';
import type { KeyRow } from './store.js';

export type ConfigApiKey = Static<typeof ConfigApiKeySchema>;

export interface KeyRecord {
  readonly id: string;
  readonly consumerId: string;
  /** HMAC-SHA256(pepper, key): 32 bytes */
  readonly digest: Buffer;
  /** undefined: the consumer's scopes apply */
  readonly scopes: readonly string[] | undefined;
  /** undefined: any client address */
  readonly cidrs: IpMatcher | undefined;
  /** lower-case serialized origins; undefined: any (or no) Origin */
  readonly origins: ReadonlySet<string> | undefined;
  /** epoch ms; Infinity when the key does not expire */
  readonly expiresAt: number;
  readonly enabled: boolean;
  readonly revoked: boolean;
  readonly source: 'config' | 'store';
}

/** Matches nothing: a key whose stored CIDR list cannot be parsed works from nowhere (fail closed). */
const NOWHERE: IpMatcher = Object.freeze({ contains: () => false, empty: false });

/**
 * An origin as browsers serialize it in the Origin header: lower-case scheme and host, no default port,
 * no trailing slash. Config and CLI values are normalized so that `https://App.example.com:443` matches.
 */
export function normalizeOrigin(o: string): string | undefined {
  let u: URL;
  try {
    u = new URL(o);
  } catch {
    return undefined;
  }
  if ((u.protocol !== 'https:' && u.protocol !== 'http:') || u.username !== '' || u.password !== '' || (u.pathname !== '/' && u.pathname !== '') || u.search !== '' || u.hash !== '') return undefined;
  return u.origin;
}

function origins(list: readonly string[] | null | undefined): ReadonlySet<string> | undefined {
  if (list === null || list === undefined || list.length === 0) return undefined;
  const out = new Set<string>();
  for (const o of list) {
    const n = normalizeOrigin(o);
    // an unparsable entry allows nothing; the remaining entries still apply
    if (n !== undefined) out.add(n);
  }
  return out;
}

export function hexOfHash(hash: string): string {
  return hash.slice(HASH_PREFIX.length);
}

/** From `identity.consumers[].apiKeys[]`; throws on a bad hash or CIDR (compile error). */
export function configKeyRecord(consumerId: string, k: ConfigApiKey): KeyRecord {
  const digest = digestOfHash(k.hash);
  if (digest === undefined) throw new Error(`API key ${k.id}: hash must be the output of \`portcullis keys hash\``);
  let cidrs: IpMatcher | undefined;
  if (k.cidrs !== undefined) {
    const p = parseCidrList(k.cidrs);
    if (!p.ok) throw new Error(`API key ${k.id}: cidrs[${p.errors[0]!.index}]: ${p.errors[0]!.reason}`);
    cidrs = p.matcher;
  }
  const expiresAt = k.expiresAt === undefined ? Infinity : Date.parse(k.expiresAt);
  if (Number.isNaN(expiresAt)) throw new Error(`API key ${k.id}: expiresAt is not an RFC 3339 time`);
  return Object.freeze({
    id: k.id,
    consumerId,
    digest,
    scopes: k.scopes,
    cidrs,
    origins: origins(k.origins),
    expiresAt,
    enabled: k.enabled ?? true,
    revoked: false,
    source: 'config' as const,
  });
}

/** From a store row. Never throws: a damaged row becomes a key that cannot be used. */
export function storeKeyRecord(r: KeyRow): KeyRecord | undefined {
  if (r.damaged !== undefined) return undefined;
  const digest = digestOfHash(r.hash);
  if (digest === undefined) return undefined;
  let cidrs: IpMatcher | undefined;
  if (r.cidrs !== null && r.cidrs.length > 0) {
    const p = parseCidrList(r.cidrs);
    cidrs = p.ok ? p.matcher : NOWHERE;
  }
  return Object.freeze({
    id: r.id,
    consumerId: r.consumerId,
    digest,
    scopes: r.scopes ?? undefined,
    cidrs,
    origins: origins(r.origins),
    expiresAt: r.expiresAt ?? Infinity,
    enabled: r.enabled,
    revoked: r.revokedAt !== null,
    source: 'store' as const,
  });
}
