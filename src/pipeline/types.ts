// The stage contract. A stage is one folder under src/stages/ whose module declares everything the gateway
// needs to know about it: its name and position, the route key (and optional top-level key) of its
// configuration with their schemas, its semantic check, whether it applies to upgrades or needs the body,
// and its compile step. The registry (src/pipeline/registry.ts) lists the modules; the config schema, the
// semantic checks and the route compiler loop over it. See docs/pipeline.md.
import type { IncomingMessage, ServerResponse, OutgoingHttpHeaders } from 'node:http';
import type { Static, TSchema } from '@sinclair/typebox';
import type { RequestContext } from './context.js';
import type { HeaderList } from './header-list.js';
import type { GatewayConfig, RouteConfig } from '../config/schema.js';
import type { SemanticIssue } from '../config/issues.js';
import type { IdentityEnv } from '../identity/env.js';

/** A stage stops the request by returning a Rejection; `undefined` means "continue". */
export interface Rejection {
  readonly status: number;
  /** short machine-readable slug; becomes the problem `type` suffix and the access log's block reason */
  readonly code: string;
  /** human-readable, safe to show to clients */
  readonly detail?: string;
  readonly headers?: OutgoingHttpHeaders;
  /** precise reason for the access log's block_reason when it differs from the client-facing code (e.g. 'api-key-revoked' behind 'invalid-credentials') */
  readonly logReason?: string;
  /** extra RFC 9457 members of the problem body (e.g. `retry_after`); safe to show to clients */
  readonly extensions?: Readonly<Record<string, string | number>>;
  /** answer with `connection: close` (the request's framing or body is in doubt, or its body is not read) */
  readonly close?: boolean;
}

export type StageOutcome = Rejection | undefined;

/**
 * What a stage's response-body handler returns: the (possibly rewritten) body to send, or a Rejection
 * that replaces the whole response with a problem document.
 */
export type ResponseBodyOutcome = Buffer | Rejection;

export interface CompiledStage {
  /** Runs before proxying, in stage order. May return a promise (only when it really must wait). */
  readonly onRequest?: (ctx: RequestContext) => StageOutcome | Promise<StageOutcome>;
  /**
   * Runs once for every response the route sends (proxied, cached, direct or a problem), before its head
   * is written, in reverse stage order; may edit the headers in place.
   */
  readonly onResponse?: (ctx: RequestContext, status: number, headers: HeaderList) => void;
  /**
   * Sees the whole upstream response body before anything is sent (the response-body phase; only routes
   * with such a stage buffer responses). Runs after onResponse-free buffering, in reverse stage order.
   */
  readonly onResponseBody?: (ctx: RequestContext, status: number, headers: HeaderList, body: Buffer) => ResponseBodyOutcome;
  /** Runs once when the exchange is over (response finished or aborted, tunnel closed). */
  readonly onDone?: (ctx: RequestContext) => void;
  /** this route's instance needs the decoded request body before onRequest (see docs/request-body.md) */
  readonly needsRequestBody?: boolean;
}

/** Everything a stage may use while compiling. Shared, immutable data built once per config. */
export interface CompileEnv {
  readonly routeId: string;
  /** the route's whole configuration (stages that depend on a sibling block, e.g. authorization on authentication) */
  readonly route: RouteConfig;
  /** `routes[i]` path prefix for compile errors */
  readonly path: string;
  readonly identity: IdentityEnv;
  /** the whole configuration, for stages with a top-level block (rateLimiting, caching, overload) */
  readonly config: GatewayConfig;
}

/**
 * How a stage treats WebSocket (and other Upgrade) requests:
 *   run           its onRequest runs before the tunnel opens (authentication, rate limits)
 *   skip          it does not apply (nothing to do for a tunnel)
 *   incompatible  a route with `websocket: true` cannot use it: a config error (e.g. the response cache)
 */
export type UpgradePolicy = 'run' | 'skip' | 'incompatible';

/**
 * A stage module. `K` is its route configuration key and `S` that block's schema; the config schema and
 * the RouteConfig type are built from these (src/config/schema.ts), so a stage's block exists exactly
 * when the stage is registered.
 */
export interface StageModule<K extends string = string, S extends TSchema = TSchema, G extends string = string, GS extends TSchema = TSchema> {
  /** kebab-case id, used in logs, docs and the contract test */
  readonly name: string;
  /** position in the chain, ascending (docs/pipeline.md lists them); unique */
  readonly order: number;
  /** the route key of the stage's configuration block */
  readonly configKey: K;
  /** schema of that block */
  readonly schema: S;
  /** an optional top-level block with gateway-wide settings (e.g. `rateLimiting`) */
  readonly global?: { readonly key: G; readonly schema: GS };
  /** compile the stage on every route, with `{}` when the route has no block (e.g. upstream bulkheads) */
  readonly always?: boolean;
  readonly upgrades: UpgradePolicy;
  /** the stage's documentation page, relative to the project root (checked by the contract test) */
  readonly docs: string;
  /**
   * Request headers only the gateway may send upstream because this stage writes them (identity headers):
   * client copies are dropped on every route, not only where the stage runs.
   */
  readonly ownedRequestHeaders?: (routes: readonly RouteConfig[]) => Iterable<string>;
  /** checks the schema cannot express; the whole config is passed (stages may check their global block too) */
  check(cfg: GatewayConfig): SemanticIssue[];
  /** Build the per-route handlers, or null when the stage has nothing to do on this route. */
  compile(config: Static<S>, env: CompileEnv): CompiledStage | null;
}

/** Any registered stage, whatever its keys (method parameters are bivariant, so every module fits). */
export type AnyStageModule = StageModule<string, TSchema, string, TSchema>;

export type { IncomingMessage, ServerResponse };
