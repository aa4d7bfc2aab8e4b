// Top-level `state:` block: where shared, short-lived counters and markers live (DPoP jti replay cache,
// rate-limit counters). `memory` is embedded: in cluster mode the primary process owns the data and the
// workers ask it over IPC, so a limit or a replay check holds for the whole node. `redis` shares it
// across nodes; `redis-cluster` does so over a Redis Cluster.
import { Type, type Static } from '@sinclair/typebox';
import { Obj, Ms } from '../config/schema-kit.js';

export const StateSchema = Type.Union([
  Obj({ type: Type.Literal('memory') }),
  Obj({
    type: Type.Literal('redis'),
    url: Type.String({ pattern: '^rediss?://', description: 'redis://host:6379/0 — use ${ENV} for a password' }),
    keyPrefix: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_.:-]*$', default: 'portcullis:' })),
    commandTimeoutMs: Type.Optional(Ms('A command that takes longer counts as a Redis failure', 200)),
  }),
  Obj({
    type: Type.Literal('redis-cluster'),
    nodes: Type.Array(Type.String({ pattern: '^rediss?://' }), {
      minItems: 1,
      description: 'Seed nodes (redis://host:port); the rest are discovered. The first URL\'s credentials and scheme (rediss = TLS) apply to every node',
    }),
    keyPrefix: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_.:-]*$', default: 'portcullis:' })),
    commandTimeoutMs: Type.Optional(Ms('A command that takes longer counts as a Redis failure', 200)),
  }),
], { description: 'Shared state store (default memory)' });
export type StateConfig = Static<typeof StateSchema>;
