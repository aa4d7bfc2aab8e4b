// `routes[].requestHeaders` / `routes[].responseHeaders`: header rewrites (see docs/configuration.md).
import { Type, type Static } from '@sinclair/typebox';
import { Obj, HeaderName } from '../../config/schema-kit.js';

export const HeaderRewriteSchema = Obj({
  set: Type.Optional(Type.Record(HeaderName, Type.String(), { additionalProperties: false })),
  add: Type.Optional(Type.Record(HeaderName, Type.String(), { additionalProperties: false })),
  remove: Type.Optional(Type.Array(HeaderName)),
});
export type HeaderRewrite = Static<typeof HeaderRewriteSchema>;
