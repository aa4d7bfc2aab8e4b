// rate-limit stage (placeholder: compiles to nothing until implemented).
import type { StageModule } from '../../pipeline/types.js';
import { RateLimitSchema, type RateLimitConfig } from './schema.js';

export const rateLimitStage: StageModule<RateLimitConfig> = {
  name: 'rate-limit',
  schema: RateLimitSchema,
  compile() { return null; },
};
