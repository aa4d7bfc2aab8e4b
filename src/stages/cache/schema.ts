// Route `cache` configuration (placeholder: the owner of this stage defines it).
import { Type, type Static } from '@sinclair/typebox';
import { Obj } from '../../config/schema-kit.js';

/** Route-level block. */
export const CacheSchema = Obj({ enabled: Type.Optional(Type.Boolean()) });
export type CacheConfig = Static<typeof CacheSchema>;

/** Top-level block (shared settings). */
export const CacheGlobalSchema = Obj({ enabled: Type.Optional(Type.Boolean()) });
export type CacheGlobalConfig = Static<typeof CacheGlobalSchema>;
