// authentication stage (being written by the lead).
import type { StageModule } from '../../pipeline/types.js';
import { AuthenticationSchema, type AuthenticationConfig } from './schema.js';

export const authenticationStage: StageModule<AuthenticationConfig> = {
  name: 'authentication',
  schema: AuthenticationSchema,
  compile() { throw new Error('authentication is not implemented yet'); },
};
