// `routes[].requestBody`: this route reads and decodes its request bodies (docs/request-body.md).
import { Type, type Static } from '@sinclair/typebox';
import { Obj } from '../../config/schema-kit.js';

export const RequestBodySchema = Obj({
  contentTypes: Type.Optional(Type.Array(Type.String({ minLength: 3, description: 'A media type, e.g. application/json' }), {
    minItems: 1, description: 'Accepted media types; any other gets 415 naming these (default: any type the body phase can decode or pass as binary)',
  })),
  required: Type.Optional(Type.Boolean({ default: false, description: 'Refuse (400) a POST, PUT or PATCH without a body' })),
}, { description: 'Read, decode and check the request body (JSON, forms, multipart) before the upstream sees it; malformed bodies get 400' });
export type RequestBodyConfig = Static<typeof RequestBodySchema>;
