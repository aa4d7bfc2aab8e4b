// The compiled form of one configuration generation. Built once by compile.ts, swapped atomically on
// reload; a request captures the generation it started with and finishes on it.
import type { CompiledStage } from '../pipeline/types.js';
import type { Router } from '../routing/router.js';
import type { Upstream } from '../upstream/types.js';
import type { IpMatcher } from '../net/cidr.js';
import type { ClientIpResolver } from '../net/client-ip.js';
import type { RequestIdStage } from '../server/request-id.js';
import type { AccessLogger } from '../server/access-log.js';
import type { RequestContext } from '../pipeline/context.js';
import type { ListenerConfig } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { PlaintextPolicy } from '../server/transport-security/plaintext.js';
import type { ServiceScope } from '../services/services.js';
import type { SecurityEventBus } from '../observability/security-events.js';
import type { LoadShedder } from '../stages/concurrency/overload.js';

export type RequestStep = NonNullable<CompiledStage['onRequest']>;
export type ResponseHandlerFn = NonNullable<CompiledStage['onResponse']>;
export type ResponseBodyHandlerFn = NonNullable<CompiledStage['onResponseBody']>;
export type DoneHandlerFn = NonNullable<CompiledStage['onDone']>;

export interface DirectResponse {
  readonly status: number;
  readonly body: Buffer;
  readonly contentType: string;
}

export interface CompiledRoute {
  readonly id: string;
  /** what runs after routing, in order: the stages' onRequest, with the request-body phase before the first stage that needs the body */
  readonly steps: readonly RequestStep[];
  /** the steps of an Upgrade request: stages with `upgrades: 'run'` only */
  readonly upgradeSteps: readonly RequestStep[];
  /** response-head handlers, in stage order (the response writer runs them in reverse) */
  readonly onResponse: readonly ResponseHandlerFn[];
  /** response-body handlers (the response-body phase), in stage order; empty = responses stream */
  readonly onResponseBody: readonly ResponseBodyHandlerFn[];
  /** limits of the response-body phase (when onResponseBody is not empty) */
  readonly responseBody: { readonly maxBytes: number; readonly overflow: 'error' | 'pass' };
  readonly onDone: readonly DoneHandlerFn[];
  /** onDone of the stages an Upgrade request runs */
  readonly upgradeDone: readonly DoneHandlerFn[];
  readonly upstream: Upstream | undefined;
  readonly respond: DirectResponse | undefined;
  /** computes the decoded upstream path from the context (strip prefix / rewrite), or undefined to keep ctx.path */
  readonly rewritePath: ((ctx: RequestContext) => string) | undefined;
  readonly websocket: boolean;
  readonly preserveHost: boolean;
  readonly exposeUpstreamErrors: boolean;
  /** effective body limit for this route (route override or listener default) per listener name */
  readonly maxBodyBytes: number | undefined;
}

export interface ListenerLimitsResolved {
  readonly maxHeaderBytes: number;
  readonly maxHeaderCount: number;
  readonly maxUrlLength: number;
  readonly maxBodyBytes: number;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly maxConnections: number;
  readonly maxConnectionsPerIp: number;
  readonly maxRequestsPerConnection: number;
}

export interface ListenerRuntime {
  readonly config: ListenerConfig;
  readonly limits: ListenerLimitsResolved;
  /** Strict-Transport-Security value for every response (TLS listeners; undefined = none), see src/server/transport-security */
  readonly hsts: string | undefined;
  /** plain-HTTP listener that redirects to https or refuses, decided before routing; undefined = serve */
  readonly plaintext: PlaintextPolicy | undefined;
}

export interface GatewayRuntime {
  readonly generation: number;
  readonly router: Router<CompiledRoute>;
  /** true when some route matches on headers, so the router needs req.headers (built lazily by Node) */
  readonly routerNeedsHeaders: boolean;
  /** lower-case request headers only the gateway may send upstream (clientCert forwardHeader names); client copies are dropped on every route. undefined = none */
  readonly ownedRequestHeaders: ReadonlySet<string> | undefined;
  /** long-lived services this generation uses (key stores, JWKS caches, state store) */
  readonly services: ServiceScope;
  /** security events (failed authentication, authorization, ...) of this process */
  readonly events: SecurityEventBus;
  readonly trusted: IpMatcher;
  readonly resolveClientIp: ClientIpResolver;
  readonly requestId: RequestIdStage;
  readonly accessLog: AccessLogger | undefined;
  /** Via header token, e.g. "1.1 portcullis" */
  readonly via: string;
  readonly upstreams: ReadonlyMap<string, Upstream>;
  readonly listeners: ReadonlyMap<string, ListenerRuntime>;
  readonly logger: Logger;
  /** load shedding (overload.loadShedding): new requests get 503 while `shedding` is set; undefined = off */
  readonly overload: LoadShedder | undefined;
  /** requests currently running on this generation; onIdle fires when a retired generation drains */
  readonly inflight: { count: number; onIdle: (() => void) | undefined };
}
