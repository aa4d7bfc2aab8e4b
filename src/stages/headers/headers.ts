// Header rewriting for one route: request side (applied while the proxy builds the upstream header list)
// and response side (applied to the upstream's response head). Compiled once into lower-cased sets and
// pairs so the per-request work is a Set lookup per header.
import type { HeaderRewrite } from '../../config/schema.js';
import { HeaderRewriteSchema } from '../../config/schema.js';

export const schema = HeaderRewriteSchema;

export interface RequestHeaderOps {
  /** lower-case names to drop from the client's request (also the names `set` replaces) */
  readonly remove: ReadonlySet<string>;
  /** flat [name, value, ...] appended after the client's headers */
  readonly append: readonly string[];
}

export function compileRequestHeaders(cfg: HeaderRewrite | undefined): RequestHeaderOps | undefined {
  if (!cfg) return undefined;
  const remove = new Set<string>();
  const append: string[] = [];
  for (const n of cfg.remove ?? []) remove.add(n.toLowerCase());
  for (const [n, v] of Object.entries(cfg.set ?? {})) { remove.add(n.toLowerCase()); append.push(n, v); }
  for (const [n, v] of Object.entries(cfg.add ?? {})) append.push(n, v);
  if (remove.size === 0 && append.length === 0) return undefined;
  return { remove, append };
}

export type ResponseHeaders = Record<string, string | string[] | number | undefined>;

/** Returns a function that edits an upstream response head in place, or undefined when there is nothing to do. */
export function compileResponseHeaders(cfg: HeaderRewrite | undefined): ((h: ResponseHeaders) => void) | undefined {
  if (!cfg) return undefined;
  const remove = (cfg.remove ?? []).map((n) => n.toLowerCase());
  const set = Object.entries(cfg.set ?? {}).map(([n, v]) => [n.toLowerCase(), v] as const);
  const add = Object.entries(cfg.add ?? {}).map(([n, v]) => [n.toLowerCase(), v] as const);
  if (remove.length + set.length + add.length === 0) return undefined;
  return (h) => {
    for (const n of remove) delete h[n];
    for (const [n, v] of set) h[n] = v;
    for (const [n, v] of add) {
      const cur = h[n];
      if (cur === undefined) h[n] = v;
      else if (Array.isArray(cur)) cur.push(v);
      else h[n] = [String(cur), v];
    }
  };
}
