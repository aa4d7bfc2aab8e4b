// Building blocks shared by every config schema module (src/config/schema.ts and the stage folders that
// own their blocks). Kept free of imports from the schema itself so stage schemas can use it without cycles.
import { Type, type TProperties, type ObjectOptions } from '@sinclair/typebox';

/** A closed object: unknown keys are errors. */
export const Obj = <T extends TProperties>(props: T, opts: ObjectOptions = {}) =>
  Type.Object(props, { additionalProperties: false, ...opts });

export const Ms = (description: string, def?: number) =>
  Type.Integer({ minimum: 0, maximum: 86_400_000, description, ...(def !== undefined ? { default: def } : {}) });
export const PosInt = (description: string, max = 2 ** 31 - 1) => Type.Integer({ minimum: 1, maximum: max, description });
export const Cidr = Type.String({ minLength: 1, description: 'IPv4/IPv6 address or CIDR block, e.g. 10.0.0.0/8 or ::1' });
export const HeaderName = Type.String({ pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", description: 'HTTP header field name' });
/** A name referring to an entry of a top-level map (issuers, introspection servers, ...) */
export const RefName = Type.String({ minLength: 1, pattern: '^[A-Za-z0-9_.-]+$' });
