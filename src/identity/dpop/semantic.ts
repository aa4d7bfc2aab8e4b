// Configuration checks for DPoP (run by src/config/semantic.ts).
import type { GatewayConfig } from '../../config/schema.js';
import type { SemanticIssue } from '../../config/issues.js';

export function dpopIssues(cfg: GatewayConfig): SemanticIssue[] {
  const hmac = (cfg.identity?.dpop?.algorithms ?? []).filter((a) => a.startsWith('HS'));
  if (hmac.length === 0) return [];
  return [{ path: 'identity.dpop.algorithms', message: `${hmac.join(', ')} cannot sign DPoP proofs: a proof is signed with the client's private key (asymmetric algorithms only)`, severity: 'error' }];
}
