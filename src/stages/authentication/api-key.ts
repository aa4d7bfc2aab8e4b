// The `apiKey` authentication method. Sources, in this order: the configured header (default X-API-Key),
// `Authorization: ApiKey <key>`, and the query parameter only where the route opts in with `queryParam`
// (URLs end up in logs, browser history and Referer headers). A key found in a query parameter on a route
// that has not opted in is refused with invalid_request, so the client learns to move it to a header.
//
// Checks, cheapest first: well-formed (prefix, alphabet, checksum: no HMAC for garbage; or, while the key
// store holds imported keys, an importable shape: 20-256 printable characters) → known (one
// HMAC, Map look-up, constant-time digest comparison; src/identity/api-keys/directory.ts) → not revoked →
// enabled → not expired → client address in the key's CIDRs → Origin allowed. The client is told only
// "invalid API key" for every state of a bad key (malformed, unknown, revoked, disabled, expired), so it
// cannot probe which keys exist or were revoked; the precise reason goes to the security event.
//
// Origins restrict where a browser may use a key (a key embedded in a web page): a request whose Origin
// is not listed is refused. A request without Origin passes: non-browser clients send none, and anyone
// outside a browser can write any Origin anyway, so demanding one would add no protection.
import type { IncomingHttpHeaders } from 'node:http';
import type { RequestContext } from '../../pipeline/context.js';
import type { IdentityEnv } from '../../identity/env.js';
import { isImportableShape, isWellFormedKey } from '../../identity/api-keys/format.js';
import { apiKeyDirectory } from '../../identity/api-keys/directory.js';
import type { ApiKeyMethodConfig } from './schema.js';
import type { AuthFailure, AuthMethod, AuthOutcome } from './types.js';

/** Query parameter names clients commonly put keys in; refused unless the route's queryParam names it. */
const SUSPECT_QUERY_NAMES = ['api_key', 'apikey', 'api-key', 'x-api-key', 'x_api_key'];
/** `key` is too common a parameter name to refuse outright: only when its value looks like one of our keys. */
const WEAK_QUERY_NAME = 'key';

const INVALID_KEY = 'invalid API key';

const failure = (status: AuthFailure['status'], reason: string, error: AuthFailure['error'], description: string): AuthFailure =>
  Object.freeze({ ok: false as const, status, reason, ...(error !== undefined ? { error } : {}), description });

const MALFORMED = failure(401, 'api-key-malformed', 'invalid_token', INVALID_KEY);
const UNKNOWN = failure(401, 'api-key-unknown', 'invalid_token', INVALID_KEY);
const CONFLICT = failure(401, 'api-key-conflict', 'invalid_request', 'the request carries more than one API key');
const REVOKED = failure(401, 'api-key-revoked', 'invalid_token', INVALID_KEY);
const DISABLED = failure(401, 'api-key-disabled', 'invalid_token', INVALID_KEY);
const EXPIRED = failure(401, 'api-key-expired', 'invalid_token', INVALID_KEY);
const IP_NOT_ALLOWED = failure(403, 'api-key-ip-not-allowed', undefined, 'this API key may not be used from this client address');
const ORIGIN_NOT_ALLOWED = failure(403, 'api-key-origin-not-allowed', undefined, 'this API key may not be used from this origin');

/** A refusal that names the key id and consumer for the event (never the key itself). */
function keyFailure(base: AuthFailure, consumer: string, keyId: string): AuthFailure {
  return { ...base, consumer, credentialId: keyId };
}

/** True for `ApiKey <credentials>` (scheme names are case-insensitive, RFC 9110 11.1). No allocation. */
function isApiKeyScheme(v: string): boolean {
  if (v.length < 8 || v.charCodeAt(6) !== 32) return false;
  const s = 'apikey';
  for (let i = 0; i < 6; i++) if ((v.charCodeAt(i) | 0x20) !== s.charCodeAt(i)) return false;
  return true;
}

function decodeComponent(s: string): string {
  if (s.indexOf('%') === -1 && s.indexOf('+') === -1) return s;
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

interface QueryScan {
  /** value of the allowed parameter */
  value: string | undefined;
  /** the allowed parameter appeared with different values */
  conflict: boolean;
  /** a key-like parameter the route does not allow */
  suspect: boolean;
}

/**
 * Looks for the allowed parameter and for key-like parameters in a raw query string. Names are compared
 * after percent-decoding; suspect names case-insensitively.
 */
function scanQuery(query: string, allowed: string | undefined, suspects: ReadonlySet<string>, maxSuspectLength: number): QueryScan {
  const out: QueryScan = { value: undefined, conflict: false, suspect: false };
  let start = 0;
  const n = query.length;
  while (start <= n) {
    let end = query.indexOf('&', start);
    if (end === -1) end = n;
    if (end > start) {
      const eq = query.indexOf('=', start);
      const nameEnd = eq === -1 || eq > end ? end : eq;
      const name = decodeComponent(query.slice(start, nameEnd));
      if (name === allowed) {
        const v = nameEnd === end ? '' : decodeComponent(query.slice(nameEnd + 1, end));
        if (out.value !== undefined && out.value !== v) out.conflict = true;
        out.value = v;
      } else if (name.length <= maxSuspectLength) {
        const lower = name.toLowerCase();
        if (suspects.has(lower)) out.suspect = true;
        else if (lower === WEAK_QUERY_NAME && query.startsWith('pcl_', nameEnd + 1)) out.suspect = true;
      }
    }
    start = end + 1;
  }
  return out;
}

/** The query string without the named parameters (decoded-name comparison, like scanQuery). */
function removeQueryParams(query: string, drop: (name: string) => boolean): string {
  const kept: string[] = [];
  for (const part of query.split('&')) {
    const eq = part.indexOf('=');
    const name = decodeComponent(eq === -1 ? part : part.slice(0, eq));
    if (!drop(name)) kept.push(part);
  }
  return kept.join('&');
}

/** Removes, in place, header pairs of a flat [name, value, ...] list (client-case names). */
function removeCredentialHeaders(fwd: string[], header: string | undefined, authorization: boolean): void {
  let w = 0;
  for (let i = 0; i < fwd.length; i += 2) {
    const name = fwd[i]!;
    const value = fwd[i + 1]!;
    const drop = (header !== undefined && name.length === header.length && name.toLowerCase() === header)
      || (authorization && name.length === 13 && name.toLowerCase() === 'authorization' && isApiKeyScheme(value));
    if (drop) continue;
    fwd[w++] = name;
    fwd[w++] = value;
  }
  fwd.length = w;
}

export function compileApiKeyMethod(cfg: ApiKeyMethodConfig, env: IdentityEnv): AuthMethod {
  const directory = apiKeyDirectory(env);
  const consumers = env.consumers;
  const header = cfg.header === false ? undefined : (cfg.header ?? 'X-API-Key').toLowerCase();
  const authorization = cfg.authorizationScheme !== false;
  const queryParam = cfg.queryParam;
  const hide = cfg.hideCredentials !== false;
  if (header === undefined && !authorization && queryParam === undefined) {
    throw new Error('apiKey: no source left for the key (header: false, authorizationScheme: false and no queryParam)');
  }
  if (header === 'authorization') throw new Error('apiKey.header: use authorizationScheme for `Authorization: ApiKey <key>`');

  const suspects = new Set(SUSPECT_QUERY_NAMES);
  if (header !== undefined) suspects.add(header);
  const maxSuspectLength = Math.max(...[...suspects].map((n) => n.length));
  const isSuspect = (name: string): boolean => {
    const l = name.toLowerCase();
    return suspects.has(l) || l === WEAK_QUERY_NAME;
  };
  const isKeyParam = (name: string): boolean => name === queryParam || isSuspect(name);
  const queryNotAllowed: AuthFailure = failure(401, 'api-key-in-query-not-allowed', 'invalid_request',
    header !== undefined ? `send the API key in the ${cfg.header ?? 'X-API-Key'} header, not in the URL` : 'send the API key in the Authorization header (ApiKey scheme), not in the URL');

  const verify = (ctx: RequestContext, h: IncomingHttpHeaders, key: string): AuthOutcome => {
    // keys imported from another gateway have their own format: while the store holds any, a key of an
    // importable shape is looked up too (the same O(1) HMAC + Map look-up, the same checks after it)
    if (!isWellFormedKey(key) && !(directory.acceptsImported && isImportableShape(key))) return MALFORMED;
    const rec = directory.lookup(key);
    if (rec === undefined) return UNKNOWN;
    if (rec.revoked) return keyFailure(REVOKED, rec.consumerId, rec.id);
    if (!rec.enabled) return keyFailure(DISABLED, rec.consumerId, rec.id);
    if (rec.expiresAt !== Infinity && rec.expiresAt <= Date.now()) return keyFailure(EXPIRED, rec.consumerId, rec.id);
    if (rec.cidrs !== undefined && !rec.cidrs.contains(ctx.clientIp)) return keyFailure(IP_NOT_ALLOWED, rec.consumerId, rec.id);
    if (rec.origins !== undefined) {
      const origin = h.origin;
      if (origin !== undefined && !rec.origins.has(origin) && !rec.origins.has(origin.toLowerCase())) return keyFailure(ORIGIN_NOT_ALLOWED, rec.consumerId, rec.id);
    }
    const consumer = consumers.get(rec.consumerId);
    if (consumer === undefined) return keyFailure(UNKNOWN, rec.consumerId, rec.id);
    return {
      ok: true,
      identity: {
        id: consumer.id,
        kind: 'api-key',
        consumer: consumer.id,
        keyId: rec.id,
        roles: consumer.roles,
        scopes: rec.scopes ?? consumer.scopes,
        metadata: consumer.metadata,
      },
    };
  };

  const method: AuthMethod = {
    kind: 'api-key',
    challengeSchemes: ['ApiKey'],
    authenticate(ctx) {
      const h = ctx.req.headers;
      let key: string | undefined;
      if (header !== undefined) {
        const v = h[header];
        // Node joins repeated custom headers with ", ": two keys become one malformed value.
        if (typeof v === 'string') key = v.trim();
      }
      if (authorization) {
        const a = h.authorization;
        if (a !== undefined && isApiKeyScheme(a)) {
          const v = a.slice(7).trim();
          if (key !== undefined && key !== v) return CONFLICT;
          key = v;
        }
      }
      if (ctx.query !== '') {
        const q = scanQuery(ctx.query, queryParam, suspects, maxSuspectLength);
        if (q.suspect) {
          // Refused; the key also stays out of the access log.
          ctx.query = removeQueryParams(ctx.query, isKeyParam);
          return queryNotAllowed;
        }
        if (q.value !== undefined) {
          if (q.conflict || (key !== undefined && key !== q.value)) {
            ctx.query = removeQueryParams(ctx.query, isKeyParam);
            return CONFLICT;
          }
          key = q.value;
          const out = verify(ctx, h, key);
          if (!out.ok) ctx.query = removeQueryParams(ctx.query, isKeyParam);
          return out;
        }
      }
      if (key === undefined) return undefined;
      return verify(ctx, h, key);
    },
  };
  if (hide) {
    return {
      ...method,
      hideCredentials(ctx) {
        if (ctx.plan !== undefined) removeCredentialHeaders(ctx.plan.fwd, header, authorization);
        if (queryParam !== undefined && ctx.query !== '') ctx.query = removeQueryParams(ctx.query, (n) => n === queryParam);
      },
    };
  }
  return method;
}
