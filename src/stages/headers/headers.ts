// Header rewriting for one route: request side (applied while the proxy builds the upstream header list)
// and response side (applied to the upstream's response head). Compiled once into lower-cased sets and
// pairs so the per-request work is a Set lookup per header.
import type { HeaderRewrite } from '../../config/schema.js';
import { HeaderRewriteSchema } from '../../config/schema.js';
import type { StageModule } from '../../pipeline/types.js';
import { removeHeaderPairs, type HeaderList } from '../../pipeline/header-list.js';

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

/** Returns a function that edits an upstream response head in place, or undefined when there is nothing to do. */
export function compileResponseHeaders(cfg: HeaderRewrite | undefined): ((h: HeaderList) => void) | undefined {
  if (!cfg) return undefined;
  const remove = (cfg.remove ?? []).map((n) => n.toLowerCase());
  const set = Object.entries(cfg.set ?? {}).map(([n, v]) => [n.toLowerCase(), v] as const);
  const add = Object.entries(cfg.add ?? {}).map(([n, v]) => [n.toLowerCase(), v] as const);
  if (remove.length + set.length + add.length === 0) return undefined;
  return (h) => {
    for (const n of remove) h.remove(n);
    for (const [n, v] of set) h.set(n, v);
    for (const [n, v] of add) h.append(n, v);
  };
}

/**
 * request-headers stage: edits the header list the proxy will send upstream (ctx.plan.fwd), after
 * routing and the security stages, so identity headers they add cannot be removed by mistake here
 * unless configured.
 */
export const requestHeadersStage: StageModule<HeaderRewrite> = {
  name: 'request-headers',
  schema: HeaderRewriteSchema,
  compile(cfg) {
    const ops = compileRequestHeaders(cfg);
    if (ops === undefined) return null;
    const { remove, append } = ops;
    return {
      name: 'request-headers',
      onRequest(ctx) {
        const fwd = ctx.plan?.fwd;
        if (fwd === undefined) return undefined;
        if (remove.size > 0) removeHeaderPairs(fwd, remove);
        for (let i = 0; i < append.length; i++) fwd.push(append[i]!);
        return undefined;
      },
    };
  },
};

/** response-headers stage: edits the upstream's response head before it is written to the client. */
export const responseHeadersStage: StageModule<HeaderRewrite> = {
  name: 'response-headers',
  schema: HeaderRewriteSchema,
  compile(cfg) {
    const edit = compileResponseHeaders(cfg);
    if (edit === undefined) return null;
    return { name: 'response-headers', onResponse: (_ctx, _status, headers) => edit(headers) };
  },
};
