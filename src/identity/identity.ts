// The identity a request carries once a credential was verified (API key, JWT, introspection, mTLS).
// Defined here, with the verifiers that build it; src/pipeline/context.ts re-exports it for stages.

export interface Identity {
  /** consumer id when the credential maps to a consumer, else the token subject or certificate identity */
  readonly id: string;
  /** how it was established: 'api-key' | 'jwt' | 'introspection' | 'mtls' | 'anonymous' */
  readonly kind: string;
  /** configured (or key-store) consumer this identity belongs to */
  readonly consumer?: string;
  /** token subject (JWT `sub`, introspection `sub`) */
  readonly subject?: string;
  /** API key id (never the key) */
  readonly keyId?: string;
  /** token issuer */
  readonly issuer?: string;
  readonly roles?: readonly string[];
  readonly scopes?: readonly string[];
  /** verified token claims (JWT payload or introspection response) */
  readonly claims?: Readonly<Record<string, unknown>>;
  /** consumer metadata (plan, tier, ...) */
  readonly metadata?: Readonly<Record<string, string | number | boolean>>;
}
