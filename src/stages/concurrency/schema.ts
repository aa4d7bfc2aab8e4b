// Route `concurrency` (bulkheads) and top-level `overload` (upstream bulkheads, load shedding) configuration.
// See docs/concurrency-and-overload.md.
import { Type, type Static } from '@sinclair/typebox';
import { Obj, PosInt } from '../../config/schema-kit.js';

/** Waiting room of a bulkhead: requests over the limit wait here for a slot instead of failing at once. */
export const BulkheadQueueSchema = Obj({
  maxQueue: PosInt('Requests that may wait for a slot; the next one gets 503 at once', 100_000),
  maxWaitMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 60_000, default: 1000, description: 'Longest wait for a slot before 503' })),
}, { description: 'Queue briefly instead of refusing at once (default: no queue)' });
export type BulkheadQueueConfig = Static<typeof BulkheadQueueSchema>;

/** Route-level block. Limits are per process (per worker). */
export const ConcurrencySchema = Obj({
  maxInFlight: Type.Optional(PosInt('Requests of this route in flight at once (per process)', 1_000_000)),
  perConsumer: Type.Optional(Obj({
    maxInFlight: PosInt('Requests of one consumer on this route in flight at once (per process); without an identity the client IP counts as the consumer', 1_000_000),
  })),
  queue: Type.Optional(BulkheadQueueSchema),
}, { description: 'Bulkheads: at most N requests in flight on this route and per consumer; the upstream bulkhead (overload.upstreams) applies too' });
export type ConcurrencyConfig = Static<typeof ConcurrencySchema>;

export const UpstreamBulkheadSchema = Obj({
  maxInFlight: PosInt('Requests to this upstream in flight at once, over every route (per process)', 1_000_000),
  queue: Type.Optional(BulkheadQueueSchema),
});
export type UpstreamBulkheadConfig = Static<typeof UpstreamBulkheadSchema>;

export const LoadSheddingSchema = Obj({
  eventLoopLagMs: Type.Integer({ minimum: 1, maximum: 60_000, description: 'Shed new requests (503 overloaded) while the event-loop delay over the last sample exceeds this' }),
  sampleIntervalMs: Type.Optional(Type.Integer({ minimum: 10, maximum: 10_000, default: 100, description: 'How often the event-loop delay is read' })),
  retryAfterSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 3600, default: 1, description: 'Retry-After of shed requests' })),
}, { description: 'Answer 503 early while the event loop lags, instead of timing out late' });
export type LoadSheddingConfig = Static<typeof LoadSheddingSchema>;

/** Top-level `overload` block. */
export const ConcurrencyGlobalSchema = Obj({
  upstreams: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z0-9_.-]+$' }), UpstreamBulkheadSchema, {
    additionalProperties: false,
    description: 'Bulkhead per upstream (name of an entry in upstreams), shared by every route to it',
  })),
  loadShedding: Type.Optional(LoadSheddingSchema),
});
export type ConcurrencyGlobalConfig = Static<typeof ConcurrencyGlobalSchema>;
