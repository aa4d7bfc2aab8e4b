// attestation stage (placeholder until implemented).
import type { StageModule } from '../../pipeline/types.js';
import { AttestationSchema, type AttestationConfig } from './schema.js';

export const attestationStage: StageModule<AttestationConfig> = {
  name: 'attestation',
  schema: AttestationSchema,
  compile() { throw new Error('attestation is not implemented yet'); },
};
