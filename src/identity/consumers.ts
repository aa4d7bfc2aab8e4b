// Consumers: who a credential belongs to. Configured consumers come from `identity.consumers`; the key
// store (src/identity/api-keys) adds the ones `portcullis keys`/`consumers` manage. Look-ups are
// synchronous, from memory.
import type { IdentityConfig } from './schema.js';
import type { ServiceScope } from '../services/services.js';
import type { Logger } from '../observability/logger.js';
import { keyStoreIndex } from './api-keys/directory.js';

export type { Consumer, ConsumerDirectory } from './consumer.js';
import type { Consumer, ConsumerDirectory } from './consumer.js';

const EMPTY: readonly string[] = Object.freeze([]);

export function configConsumers(cfg: IdentityConfig | undefined): Map<string, Consumer> {
  const out = new Map<string, Consumer>();
  for (const c of cfg?.consumers ?? []) {
    out.set(c.id, Object.freeze({ id: c.id, roles: c.roles ?? EMPTY, scopes: c.scopes ?? EMPTY, metadata: Object.freeze({ ...(c.metadata ?? {}) }) }));
  }
  return out;
}

/** Configured consumers first; then `fallback` (the key store's consumers) when given. */
export function consumerDirectory(config: ReadonlyMap<string, Consumer>, fallback?: ConsumerDirectory): ConsumerDirectory {
  return { get: (id) => config.get(id) ?? fallback?.get(id) };
}

/**
 * The directory a generation uses: configured consumers, then the key store's (`identity.keyStore`).
 * A configured consumer wins over a store consumer with the same id: the config file is the reviewed
 * source, and this way a store key can be issued to a configured consumer (`keys create --consumer ID`
 * adds an empty store row for it) and get the configured roles, scopes and metadata.
 * Called once per compile; the store index is the same long-lived service the API key method uses.
 */
export function createConsumerDirectory(cfg: IdentityConfig | undefined, services: ServiceScope, baseDir: string, logger: Logger): ConsumerDirectory {
  const store = keyStoreIndex(cfg, services, baseDir, logger);
  return consumerDirectory(configConsumers(cfg), store === undefined ? undefined : { get: (id) => store.consumer(id) });
}
