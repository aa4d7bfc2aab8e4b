// Consumers: who a credential belongs to. Configured consumers come from `identity.consumers`; the key
// store (src/identity/api-keys) adds the ones `portcullis keys`/`consumers` manage. Look-ups are
// synchronous, from memory.
import type { IdentityConfig } from './schema.js';
import type { ServiceScope } from '../gateway/services.js';
import type { Logger } from '../observability/logger.js';

export interface Consumer {
  readonly id: string;
  readonly roles: readonly string[];
  readonly scopes: readonly string[];
  readonly metadata: Readonly<Record<string, string | number | boolean>>;
}

export interface ConsumerDirectory {
  get(id: string): Consumer | undefined;
}

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
 * The directory a generation uses: configured consumers, then (once the key store exists) the store's.
 * Called once per compile.
 */
export function createConsumerDirectory(cfg: IdentityConfig | undefined, _services: ServiceScope, _baseDir: string, _logger: Logger): ConsumerDirectory {
  return consumerDirectory(configConsumers(cfg));
}
