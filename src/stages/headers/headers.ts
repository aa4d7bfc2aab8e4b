// Header rewriting for one route: request side (applied while the proxy builds the upstream header list)
// and response side (applied to the upstream's response head). Compiled once into lower-cased sets and
// pairs so the per-request work is a Set lookup per header.
import type { GatewayConfig } from '../../config/schema.js';
import { HeaderRewriteSchema, type HeaderRewrite } from './schema.js';
import type { StageModule } from '../../pipeline/types.js';
import { removeHeaderPairs, type HeaderList } from '../../pipeline/header-list.js';
import { formatPath, type PathSegment, type SemanticIssue } from '../../config/issues.js';
import { CTL_IN_HEADER_VALUE, FRAMING_HEADERS, GATEWAY_REQUEST_HEADERS } from '../../net/header-tables.js';

export { HeaderRewriteSchema, type HeaderRewrite } from './schema.js';

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
export const requestHeadersStage: StageModule<'requestHeaders', typeof HeaderRewriteSchema> = {
  name: 'request-headers',
  order: 110,
  configKey: 'requestHeaders',
  schema: HeaderRewriteSchema,
  upgrades: 'run',
  docs: 'docs/configuration.md',
  check: (cfg) => rewriteIssues(cfg, 'requestHeaders'),
  compile(cfg) {
    const ops = compileRequestHeaders(cfg);
    if (ops === undefined) return null;
    const { remove, append } = ops;
    return {
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
export const responseHeadersStage: StageModule<'responseHeaders', typeof HeaderRewriteSchema> = {
  name: 'response-headers',
  order: 200,
  configKey: 'responseHeaders',
  schema: HeaderRewriteSchema,
  upgrades: 'skip',
  docs: 'docs/configuration.md',
  check: (cfg) => rewriteIssues(cfg, 'responseHeaders'),
  compile(cfg) {
    const edit = compileResponseHeaders(cfg);
    if (edit === undefined) return null;
    return { onResponse: (_ctx, _status, headers) => edit(headers) };
  },
};

/** Values that could split a header block, framing headers, and (requests) headers the gateway writes itself. */
function rewriteIssues(cfg: GatewayConfig, which: 'requestHeaders' | 'responseHeaders'): SemanticIssue[] {
  const out: SemanticIssue[] = [];
  const err = (path: PathSegment[], message: string): void => { out.push({ path: formatPath(path), message, severity: 'error' }); };
  cfg.routes.forEach((r, i) => {
    const hr = r[which];
    for (const op of ['set', 'add'] as const) {
      for (const [name, value] of Object.entries(hr?.[op] ?? {})) {
        const p: PathSegment[] = ['routes', i, which, op, name];
        const verb = op === 'set' ? 'set' : 'added';
        if (CTL_IN_HEADER_VALUE.test(value)) err(p, 'header value must not contain CR, LF or NUL');
        if (FRAMING_HEADERS.has(name.toLowerCase())) err(p, `${JSON.stringify(name)} cannot be ${verb}: the gateway controls hop-by-hop and message-framing headers`);
        else if (which === 'requestHeaders' && GATEWAY_REQUEST_HEADERS.has(name.toLowerCase())) err(p, `${JSON.stringify(name)} cannot be ${verb}: the gateway sets it for the upstream (use preserveHost or the target URL for Host)`);
      }
    }
  });
  return out;
}
