// The package version, read at runtime from package.json. Both src/version.ts (tsx) and
// dist/version.js (built) sit one directory below the package root.
import { readFileSync } from 'node:fs';

export function readVersion(packageJsonUrl: URL = new URL('../package.json', import.meta.url)): string {
  try {
    const pkg: unknown = JSON.parse(readFileSync(packageJsonUrl, 'utf8'));
    if (typeof pkg === 'object' && pkg !== null && 'version' in pkg && typeof pkg.version === 'string') return pkg.version;
  } catch {
    // fall through: a missing or broken package.json must not stop the gateway
  }
  return '0.0.0-unknown';
}

export const VERSION: string = readVersion();
