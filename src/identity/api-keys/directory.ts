// Where a presented API key is looked up: the keys configured under identity.consumers[].apiKeys (this
// configuration generation) and the key store's keys (a long-lived service shared across reloads, see
// index-service.ts). One HMAC and at most two Map look-ups, all synchronous.
//
// Why a Map keyed by the HMAC leaks nothing through timing: the Map is keyed by HMAC-SHA256(pepper, key),
// not by the key. Whatever the hash-table probe or string comparison reveals about how close a presented
// digest came to a stored one is information about HMAC outputs; without the pepper an attacker cannot
// choose keys whose digests share a prefix with a stored digest, so timing cannot guide a search for a
// key one character at a time. After the Map hit the digests are still compared with
// crypto.timingSafeEqual (fixed 32 bytes), so equality itself never short-circuits.
//
// Keys that verified recently are remembered by SHA-256 of the key (the same construction as the token
// verification cache): the HMAC object is about half of a key check's cost, a one-shot hash a fifth of
// it. The memo holds the index's own records and is dropped whenever the index changes, so a revocation
// or a new expiry is seen exactly as without it; unknown keys are never memoized and always pay the HMAC.
import crypto from 'node:crypto';
import type { Logger } from '../../observability/logger.js';
import type { ServiceScope } from '../../services/services.js';
import { GenerationLocal, serviceKey } from '../../services/services.js';
import type { IdentityEnv } from '../env.js';
import type { IdentityConfig } from '../schema.js';
import { checkPepper } from './format.js';
import { KeyStoreIndex } from './index-service.js';
import { configKeyRecord, hexOfHash, type KeyRecord } from './records.js';

/** The store service for `identity.keyStore`, reused across generations while its configuration is unchanged. */
export function keyStoreIndex(cfg: IdentityConfig | undefined, services: ServiceScope, baseDir: string, logger: Logger): KeyStoreIndex | undefined {
  const ks = cfg?.keyStore;
  if (ks === undefined) return undefined;
  // baseDir is part of the key: the same relative SQLite path from another config directory is another file
  return services.use(serviceKey('key-store', ks, baseDir), () => new KeyStoreIndex(ks, baseDir, logger));
}

/** Verified keys remembered per directory; cleared, not evicted one by one, when full. */
const MAX_RECENT = 10_000;

export class ApiKeyDirectory {
  private readonly secret: crypto.KeyObject | undefined;
  private readonly recent = new Map<string, KeyRecord>();
  private recentFor = -1;

  constructor(
    private readonly configured: ReadonlyMap<string, KeyRecord>,
    private readonly store: KeyStoreIndex | undefined,
    pepper: string | undefined,
  ) {
    this.secret = pepper === undefined ? undefined : crypto.createSecretKey(Buffer.from(pepper, 'utf8'));
  }

  /**
   * Whether keys outside the pcl_ format can be known: the store holds imported keys. Until one is
   * imported, such keys are refused before they cost an HMAC, as before.
   */
  get acceptsImported(): boolean { return this.store?.hasImportedKeys === true; }

  /**
   * The key's record, or undefined when it is not known. `key` must already be well-formed
   * (isWellFormedKey, or isImportableShape when acceptsImported): garbage is rejected before it costs an
   * HMAC. Imported and generated keys take the same path: one HMAC of the whole key, one Map look-up.
   */
  lookup(key: string): KeyRecord | undefined {
    if (this.secret === undefined) return undefined;
    const changes = this.store?.changeCount ?? 0;
    if (changes !== this.recentFor) {
      this.recent.clear();
      this.recentFor = changes;
    }
    const memo = crypto.hash('sha256', key, 'base64');
    const seen = this.recent.get(memo);
    if (seen !== undefined) return seen;
    const digest = crypto.createHmac('sha256', this.secret).update(key).digest();
    const hex = digest.toString('hex');
    // Configured keys win over store keys with the same hash.
    const rec = this.configured.get(hex) ?? this.store?.key(hex);
    if (rec === undefined || !crypto.timingSafeEqual(rec.digest, digest)) return undefined;
    if (this.recent.size >= MAX_RECENT) this.recent.clear();
    this.recent.set(memo, rec);
    return rec;
  }
}

/** The generation's directory, on its ServiceScope (one IdentityEnv per generation). */
const API_KEY_DIRECTORY = new GenerationLocal<ApiKeyDirectory>('api key directory');

/**
 * The directory of a configuration generation (one per IdentityEnv, shared by all its routes). Throws
 * (a compile error) when keys are configured without a pepper, or on a bad configured key.
 */
export function apiKeyDirectory(env: IdentityEnv): ApiKeyDirectory {
  return env.services.local(API_KEY_DIRECTORY, () => buildDirectory(env));
}

function buildDirectory(env: IdentityEnv): ApiKeyDirectory {
  const cfg = env.config;
  const pepper = checkPepper(cfg.pepper, 'identity.pepper (e.g. pepper: ${PORTCULLIS_KEY_PEPPER})');
  const configured = new Map<string, KeyRecord>();
  for (const c of cfg.consumers ?? []) {
    for (const k of c.apiKeys ?? []) {
      const hex = hexOfHash(k.hash);
      if (configured.has(hex)) throw new Error(`identity.consumers: API key ${k.id} has the same hash as key ${configured.get(hex)!.id}`);
      configured.set(hex, configKeyRecord(c.id, k));
    }
  }
  return new ApiKeyDirectory(configured, keyStoreIndex(cfg, env.services, env.baseDir, env.logger), pepper);
}
