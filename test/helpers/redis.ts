// Tests that write to the machine's Redis (127.0.0.1:6379) use a unique key prefix and delete what they wrote.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';

export const TEST_REDIS_URL = 'redis://127.0.0.1:6379';

/** `ptest-<name>-<random>:`: unique per run, so parallel test files never share keys */
export function testKeyPrefix(name: string): string {
  return `ptest-${name}-${randomUUID().slice(0, 8)}:`;
}

/** Deletes every key starting with `prefix` (test clean-up). */
export async function deleteTestKeys(prefix: string, url = TEST_REDIS_URL): Promise<void> {
  const admin = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    const keys = await admin.keys(`${prefix}*`);
    if (keys.length > 0) await admin.del(...keys);
  } finally {
    admin.disconnect();
  }
}
