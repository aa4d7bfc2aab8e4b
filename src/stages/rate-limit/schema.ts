// Route `rate-limit` configuration (placeholder: the owner of this stage defines it).
import { Type, type Static } from '@sinclair/typebox';
import { Obj } from '../../config/schema-kit.js';

/** Route-level block. */
export const RateLimitSchema = Obj({ enabled: Type.Optional(Type.Boolean()) });
export type RateLimitConfig = Static<typeof RateLimitSchema>;

/** Top-level block (shared settings). */
export const RateLimitGlobalSchema = Obj({ enabled: Type.Optional(Type.Boolean()) });
export type RateLimitGlobalConfig = Static<typeof RateLimitGlobalSchema>;
