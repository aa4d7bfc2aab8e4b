// TLS termination for listeners: certificate management (SNI, reload, expiry), the protocol and cipher
// policy, HTTP/2 adaptation and defences, and the `validate` file checks.
export { createTlsManager, TlsConfigError, type TlsManager, type TlsManagerOptions, type CertificateInfo } from './manager.js';
export { checkTlsFiles, type TlsCheckResult } from './check.js';
export type { TlsProblem, PathSegment } from './load.js';
export { resolveCiphers, evaluateCipherString, isModernSuite, CipherStringError, DEFAULT_TLS12_SUITES, DEFAULT_TLS13_SUITES } from './policy.js';
export { EXPIRY_METRIC } from './metrics.js';
export { HTTP2_DEFAULTS, resolveHttp2Limits } from './http2.js';
