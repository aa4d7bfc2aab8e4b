// Public surface of the upstream layer.
export { createUpstream, TIMEOUT_DEFAULTS, POOL_DEFAULTS, RETRY_DEFAULTS, type CreateUpstreamOptions } from './upstream.js';
export type * from './types.js';
