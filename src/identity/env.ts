// What identity code gets at compile time: the `identity:` configuration, the service scope (for key
// stores, JWKS caches, introspection clients that outlive a generation), the consumer directory, the
// shared state store and the security event bus.
import type { IdentityConfig } from './schema.js';
import type { ServiceScope } from '../services/services.js';
import type { Logger } from '../observability/logger.js';
import type { SecurityEventBus } from '../observability/security-events.js';
import type { StateStore } from '../state/types.js';
import type { ConsumerDirectory } from './consumer.js';

export interface IdentityEnv {
  /** `identity:` block ({} when absent) */
  readonly config: IdentityConfig;
  readonly services: ServiceScope;
  /** relative files (PEM keys, CA bundles, SQLite path) resolve against this */
  readonly baseDir: string;
  readonly logger: Logger;
  readonly events: SecurityEventBus;
  readonly state: StateStore;
  readonly consumers: ConsumerDirectory;
}
