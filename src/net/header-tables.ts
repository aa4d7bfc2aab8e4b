// The gateway's header tables, in one place: which headers describe a connection rather than a message
// (hop-by-hop, RFC 9110 7.6.1), which define message framing, which the gateway writes itself, and which a
// response must never carry onward. The request scan, the proxy, the WebSocket tunnel, the response writer
// and the config checks all read these sets.

/** Connection-level headers (RFC 9110 7.6.1 plus legacy ones): never forwarded, never configurable. */
export const HOP_BY_HOP_HEADERS: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer',
  'transfer-encoding', 'upgrade',
]);

/** Headers that define message framing; letting config rewrite them enables request smuggling. */
export const FRAMING_HEADERS: ReadonlySet<string> = new Set([
  'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade',
]);

/**
 * Request headers the gateway writes for the upstream: a configured copy would be sent twice (two Host
 * headers is an ambiguity a backend may resolve either way) or would let config spoof them.
 */
export const GATEWAY_REQUEST_HEADERS: ReadonlySet<string> = new Set(['host', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded', 'via']);

/** Response headers that advertise the upstream's software and version. */
export const VERSION_LEAK_HEADERS: ReadonlySet<string> = new Set(['server', 'x-powered-by', 'x-aspnet-version', 'x-aspnetmvc-version']);

/**
 * Response headers an upstream's reply loses on the way to the client: hop-by-hop ones, version leaks, and
 * those the gateway sets itself on every response (`x-content-type-options`, `via`; HSTS belongs to the
 * listener, never to an upstream).
 */
export const RESPONSE_DROP_HEADERS: ReadonlySet<string> = new Set([
  ...HOP_BY_HOP_HEADERS,
  ...VERSION_LEAK_HEADERS,
  'x-content-type-options', 'via', 'strict-transport-security',
]);

/** CR, LF or NUL: a value with one could split a header block. */
export const CTL_IN_HEADER_VALUE = /[\r\n\0]/;
