// Where a configuration lets credentials travel: header and query parameter names that must never be
// logged (access log) nor leave the gateway for anything but the upstream (the Redis response cache).
// Computed once per configuration.
import type { RouteConfig } from './schema.js';

/** Request headers that carry a secret whatever the configuration says (lower case). */
export const ALWAYS_SECRET_HEADERS: readonly string[] = ['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key', 'dpop'];

/**
 * Name fragments that say a header carries a secret (lower case): `X-Session-Token`, `X-Auth-User`,
 * `X-Client-Secret`, `X-Api-Key`, `Cookie2`, `X-Amz-Security-Token`, ... Used by the access log: a header an
 * operator lists in includeHeaders is redacted when its name contains one of these, so a custom token
 * header never lands in a log file because nobody thought to add it to redactHeaders.
 */
export const SECRET_HEADER_NAME_PARTS: readonly string[] = ['token', 'secret', 'password', 'passwd', 'session', 'api-key', 'apikey', 'api_key', 'auth', 'cookie', 'credential'];

/** True if a header name (any case) says it carries a secret: ALWAYS_SECRET_HEADERS or SECRET_HEADER_NAME_PARTS. */
export function headerNameLooksSecret(name: string): boolean {
  const n = name.toLowerCase();
  return ALWAYS_SECRET_HEADERS.includes(n) || SECRET_HEADER_NAME_PARTS.some((p) => n.includes(p));
}

export interface CredentialNames {
  /** header names (as configured) of API keys and attestation tokens on some route */
  readonly headers: readonly string[];
  /** query parameter names of API keys on some route */
  readonly query: readonly string[];
}

export function credentialNames(routes: readonly RouteConfig[]): CredentialNames {
  const headers: string[] = [];
  const query: string[] = [];
  for (const r of routes) {
    if (r.attestation !== undefined) headers.push(r.attestation.header ?? DEFAULT_ATTESTATION_HEADER);
    for (const m of r.authentication?.methods ?? []) {
      if (!('apiKey' in m)) continue;
      if (typeof m.apiKey.header === 'string') headers.push(m.apiKey.header);
      if (m.apiKey.queryParam !== undefined) query.push(m.apiKey.queryParam);
    }
  }
  return { headers, query };
}

/** ALWAYS_SECRET_HEADERS plus every credential header of the routes, lower case. */
export function secretRequestHeaders(routes: readonly RouteConfig[], extra: readonly string[] = []): ReadonlySet<string> {
  return new Set([...ALWAYS_SECRET_HEADERS, ...credentialNames(routes).headers, ...extra].map((h) => h.toLowerCase()));
}

/** Query parameters whose values the access log always redacts (accessLog.redactQuery adds more). */
export const DEFAULT_SECRET_QUERY: readonly string[] = ['token', 'access_token', 'id_token', 'refresh_token', 'api_key', 'apikey', 'key', 'password', 'passwd', 'secret', 'client_secret', 'code', 'signature', 'sig'];

/** The header an attestation token travels in unless a route names another (routes[].attestation.header). */
export const DEFAULT_ATTESTATION_HEADER = 'Attestation-Token';
