// Reading identity facts out of verified claims (JWT payloads, introspection responses).

/** `a.b.c` in a claims object; undefined when any step is missing or not an object. Own properties only. */
export function claimPath(claims: Readonly<Record<string, unknown>>, path: string): unknown {
  if (!path.includes('.')) return Object.hasOwn(claims, path) ? claims[path] : undefined;
  let cur: unknown = claims;
  for (const part of path.split('.')) {
    if (typeof cur !== 'object' || cur === null || Array.isArray(cur) || !Object.hasOwn(cur, part)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/** A claim value as a list of non-empty strings: an array (non-strings dropped) or one space-separated string. */
export function stringList(v: unknown): string[] {
  if (typeof v === 'string') return v.split(' ').filter((s) => s !== '');
  if (Array.isArray(v)) return v.filter((s): s is string => typeof s === 'string' && s !== '');
  return [];
}

/** OAuth scopes: `scope` (RFC 8693/9068 space-separated string) or `scp` (array, or string). */
export function scopesOf(claims: Readonly<Record<string, unknown>>): string[] {
  const s = stringList(claims.scope);
  return s.length > 0 ? s : stringList(claims.scp);
}

export function mergeRoles(a: readonly string[], b: readonly string[]): string[] {
  if (b.length === 0) return [...a];
  return [...new Set([...a, ...b])];
}
