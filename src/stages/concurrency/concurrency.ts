// concurrency stage (placeholder: compiles to nothing until implemented).
import type { StageModule } from '../../pipeline/types.js';
import { ConcurrencySchema, type ConcurrencyConfig } from './schema.js';

export const concurrencyStage: StageModule<ConcurrencyConfig> = {
  name: 'concurrency',
  schema: ConcurrencySchema,
  compile() { return null; },
};
