// The stage contract. Every pipeline stage is a module with a config schema, a compile step that runs
// once per route at config load, and per-request handlers that are plain closures over prepared data.
import type { IncomingMessage, ServerResponse, OutgoingHttpHeaders } from 'node:http';
import type { TSchema } from '@sinclair/typebox';
import type { RequestContext } from './context.js';
import type { HeaderList } from './header-list.js';
import type { GatewayConfig, RouteConfig } from '../config/schema.js';
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
}

export type StageOutcome = Rejection | undefined;

export interface CompiledStage {
  readonly name: string;
  /** Runs before proxying, in stage order. May return a promise (only when it really must wait). */
  readonly onRequest?: (ctx: RequestContext) => StageOutcome | Promise<StageOutcome>;
  /** Runs when the upstream's response head is known, in reverse stage order; may edit the headers in place. */
  readonly onResponse?: (ctx: RequestContext, status: number, headers: HeaderList) => void;
  /** Runs once when the exchange is over (response finished or aborted). */
  readonly onDone?: (ctx: RequestContext) => void;
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

/** Fixed, documented stage order (see docs/pipeline.md). Later issues slot their stages in by this number. */
export const STAGE_ORDER = {
  'client-ip': 10,
  'request-id': 20,
  limits: 30,
  'ip-filter': 40,
  waf: 50,
  cors: 60,
  /** per-route mTLS: verified client certificate, allowlists, identity (src/stages/client-cert) */
  'client-cert': 65,
  /** app attestation token (src/stages/attestation) */
  attestation: 67,
  authentication: 70,
  authorization: 80,
  'rate-limit': 90,
  validation: 100,
  'request-headers': 110,
  cache: 120,
  /** bulkheads: in-flight limits per route, consumer and upstream (src/stages/concurrency). After the cache:
   * a hit or a coalesced follower never goes upstream, so it must not take (or wait for) a slot. */
  concurrency: 125,
  // proxy happens here
  'response-headers': 200,
  'access-log': 900,
} as const;
export type StageName = keyof typeof STAGE_ORDER;

export interface StageModule<C> {
  readonly name: StageName;
  /** JSON Schema (TypeBox) of this stage's config block */
  readonly schema: TSchema;
  /** Build the per-route handler, or null when the stage has nothing to do on this route. */
  compile(config: C, env: CompileEnv): CompiledStage | null;
}

export type { IncomingMessage, ServerResponse };
