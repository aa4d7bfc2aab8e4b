// Route `concurrency` configuration (placeholder: the owner of this stage defines it).
import { Type, type Static } from '@sinclair/typebox';
import { Obj } from '../../config/schema-kit.js';

/** Route-level block. */
export const ConcurrencySchema = Obj({ enabled: Type.Optional(Type.Boolean()) });
export type ConcurrencyConfig = Static<typeof ConcurrencySchema>;

/** Top-level block (shared settings). */
export const ConcurrencyGlobalSchema = Obj({ enabled: Type.Optional(Type.Boolean()) });
export type ConcurrencyGlobalConfig = Static<typeof ConcurrencyGlobalSchema>;
