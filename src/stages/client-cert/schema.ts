// `routes[].clientCert`: per-route mTLS requirements (see docs/transport-security.md).
import { Type, type Static } from '@sinclair/typebox';
import { Obj } from '../../config/schema-kit.js';

export const ClientCertSchema = Obj({
  required: Type.Boolean({ description: 'Refuse (403) requests without a verified client certificate' }),
  subjects: Type.Optional(Type.Array(Type.String(), { minItems: 1, description: 'Allowed subject CNs' })),
  sans: Type.Optional(Type.Array(Type.String(), { minItems: 1, description: 'Allowed subject alternative names (DNS, URI, email)' })),
  fingerprints: Type.Optional(Type.Array(Type.String({ pattern: '^[A-Fa-f0-9:]{64,95}$' }), { minItems: 1, description: 'Allowed SHA-256 certificate fingerprints' })),
  forwardHeader: Type.Optional(Type.String({ pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", description: 'Send the verified identity upstream in this header (client copies are always removed)' })),
}, { description: 'mTLS requirement for this route (the listener must request client certificates)' });
export type ClientCertConfig = Static<typeof ClientCertSchema>;
