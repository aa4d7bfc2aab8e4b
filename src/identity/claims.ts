// Reading identity facts out of verified claims (JWT payloads, introspection responses).
//

// One reader for every place a claim is named in configuration (roles/subject/consumer claims,
// authorization conditions, forwarded claims, rate-limit keys), so a path means the same everywhere.

/**
 * The claim at `full`: the top-level claim of that exact name if there is one (namespaced claims such as
 * `https://example.com/roles` contain dots), else the dot path `a.b.c`. Own properties only (never
 * `constructor` or `__proto__`), arrays are not walked into. `segments` is `full.split('.')`: pass it
 * precomputed on the request path.
 */
export function claimAt(claims: Readonly<Record<string, unknown>> | undefined, full: string, segments: readonly string[] = full.split('.')): unknown {
  if (claims === undefined) return undefined;
  if (Object.hasOwn(claims, full)) return claims[full];
  if (segments.length < 2) return undefined;
  let cur: unknown = claims;
  for (const s of segments) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur) || !Object.hasOwn(cur, s)) return undefined;
    cur = (cur as Record<string, unknown>)[s];
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
