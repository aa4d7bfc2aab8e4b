// Creates the configured state store. (Initial in-process memory store; see src/state/types.ts.)
import type { StateConfig } from './schema.js';
import type { StateStore } from './types.js';

export type { StateStore } from './types.js';

class LocalMemoryStore implements StateStore {
  readonly kind = 'memory' as const;
  private readonly seen = new Map<string, number>();
  async ready(): Promise<void> {}
  async close(): Promise<void> { this.seen.clear(); }
  async claimOnce(key: string, ttlMs: number): Promise<boolean> {
    const now = Date.now();
    const until = this.seen.get(key);
    if (until !== undefined && until > now) return false;
    this.seen.set(key, now + ttlMs);
    return true;
  }
}

export function createStateStore(_cfg: StateConfig | undefined): StateStore {
  return new LocalMemoryStore();
}
