// The stage registry: every pipeline stage, one line each. The config schema (src/config/schema.ts), the
// semantic checks (src/config/semantic.ts) and the route compiler (src/gateway/compile.ts) loop over this
// list; a stage's position in the chain is its module's `order`. Adding a stage = its folder + one line here.
import { clientCertStage } from './client-cert/client-cert.js';
import { attestationStage } from './attestation/attestation.js';
import { authenticationStage } from './authentication/authentication.js';
import { authorizationStage } from './authorization/authorization.js';
import { rateLimitStage } from './rate-limit/rate-limit.js';
import { requestBodyStage } from './request-body/request-body.js';
import { requestHeadersStage, responseHeadersStage } from './headers/headers.js';
import { cacheStage } from './cache/cache.js';
import { concurrencyStage } from './concurrency/concurrency.js';

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
