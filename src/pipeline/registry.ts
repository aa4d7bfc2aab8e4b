// The stage registry: every pipeline stage, one line each. The config schema (src/config/schema.ts), the
// semantic checks (src/config/semantic.ts) and the route compiler (src/gateway/compile.ts) loop over this
// list; a stage's position in the chain is its module's `order`. Adding a stage = its folder + one line here.
import { clientCertStage } from '../stages/client-cert/client-cert.js';
import { attestationStage } from '../stages/attestation/attestation.js';
import { authenticationStage } from '../stages/authentication/authentication.js';
import { authorizationStage } from '../stages/authorization/authorization.js';
import { rateLimitStage } from '../stages/rate-limit/rate-limit.js';
import { requestBodyStage } from '../stages/request-body/request-body.js';
import { requestHeadersStage, responseHeadersStage } from '../stages/headers/headers.js';
import { cacheStage } from '../stages/cache/cache.js';
import { concurrencyStage } from '../stages/concurrency/concurrency.js';

export const STAGES = [
  clientCertStage,
  attestationStage,
  authenticationStage,
  authorizationStage,
  rateLimitStage,
  requestBodyStage,
  requestHeadersStage,
  cacheStage,
  concurrencyStage,
  responseHeadersStage,
] as const;
