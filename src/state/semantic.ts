// Configuration checks for the top-level `state:` block (run by src/config/semantic.ts), so that
// `portcullis validate` reports what the store would otherwise only refuse at start-up.
import type { GatewayConfig } from '../config/schema.js';
import type { SemanticIssue } from '../config/issues.js';
import { formatPath } from '../config/issues.js';
import { parseRedisNodeUrl } from './redis-url.js';

export function stateIssues(cfg: GatewayConfig): SemanticIssue[] {
  const out: SemanticIssue[] = [];
  // never the URL itself in a message: it may carry a password
  const badUrl = (path: (string | number)[], url: string | undefined): void => {
    if (url !== undefined && parseRedisNodeUrl(url) === undefined) out.push({ path: formatPath(path), message: 'not a valid redis:// URL (redis://[user:password@]host:port[/db])', severity: 'error' });
  };
  const state = cfg.state;
  if (state?.type === 'redis') badUrl(['state', 'url'], state.url);
  if (state?.type === 'redis-cluster') state.nodes.forEach((url, i) => badUrl(['state', 'nodes', i], url));
  const caching = cfg.caching;
  badUrl(['caching', 'redis', 'url'], caching?.redis?.url);
  if (caching?.store === 'redis' && caching.redis?.url === undefined && state?.type !== 'redis' && cfg.routes.some((r) => r.cache !== undefined)) {
    out.push({
      path: formatPath(['caching', 'redis', 'url']),
      message: state?.type === 'redis-cluster'
        ? 'caching.store is redis and state is a Redis Cluster: the response cache needs a single Redis endpoint here'
        : 'caching.store is redis but neither caching.redis.url nor a redis `state:` block gives a URL',
      severity: 'error',
    });
  }
  return out;
}
