// Configuration checks for the top-level `state:` block (run by src/config/semantic.ts), so that
// `portcullis validate` reports what the store would otherwise only refuse at start-up.
import type { GatewayConfig } from '../config/schema.js';
import type { SemanticIssue } from '../config/semantic.js';
import { formatPath } from '../config/issues.js';
import { parseRedisNodeUrl } from './redis-url.js';

export function stateIssues(cfg: GatewayConfig): SemanticIssue[] {
  const out: SemanticIssue[] = [];
  const state = cfg.state;
  if (state?.type === 'redis-cluster') {
    state.nodes.forEach((url, i) => {
      // never the URL itself in the message: it may carry a password
      if (parseRedisNodeUrl(url) === undefined) out.push({ path: formatPath(['state', 'nodes', i]), message: 'not a valid redis:// URL (redis://[user:password@]host:port)', severity: 'error' });
    });
    if (cfg.caching?.store === 'redis' && cfg.caching.redis?.url === undefined) {
      out.push({ path: formatPath(['caching', 'redis', 'url']), message: 'caching.store is redis and state is a Redis Cluster: the response cache needs a single Redis endpoint here', severity: 'error' });
    }
  }
  return out;
}
