// cache stage (placeholder: compiles to nothing until implemented).
import type { StageModule } from '../../pipeline/types.js';
import { CacheSchema, type CacheConfig } from './schema.js';

export const cacheStage: StageModule<CacheConfig> = {
  name: 'cache',
  schema: CacheSchema,
  compile() { return null; },
};
