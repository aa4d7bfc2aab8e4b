// Temporary directories for tests, removed even when a test fails or times out: at the end of the test
// (t.after) when a test context is given, else when the test file ends (root `after` hook), and in any
// case when the process exits or is signalled (cleanup.ts).
import { after, type TestContext } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onExitSync } from './cleanup.js';

const dirs = new Set<string>();

function removeSync(dir: string): void {
  try { rmSync(dir, { recursive: true, force: true }); } catch { /* best effort */ }
  dirs.delete(dir);
}

onExitSync(() => { for (const d of [...dirs]) removeSync(d); });
after(async () => { await Promise.all([...dirs].map((d) => removeTempDir(d))); });

/** mkdtemp under the OS temp dir (`prefix` e.g. 'portcullis-reload-'); registered for removal. */
export function tempDir(prefix = 'portcullis-test-', t?: Pick<TestContext, 'after'>): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.add(dir);
  t?.after(() => removeTempDir(dir));
  return dir;
}

/** Removes a directory made by tempDir now (idempotent). */
export async function removeTempDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  dirs.delete(dir);
}

/** Directories made by tempDir and not removed yet. */
export function liveTempDirs(): string[] {
  return [...dirs];
}
