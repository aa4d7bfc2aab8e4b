// authorization stage (placeholder until implemented).
import type { StageModule } from '../../pipeline/types.js';
import { AuthorizationSchema, type AuthorizationConfig } from './schema.js';

export const authorizationStage: StageModule<AuthorizationConfig> = {
  name: 'authorization',
  schema: AuthorizationSchema,
  compile() { throw new Error('authorization is not implemented yet'); },
};
