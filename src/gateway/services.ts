// Moved to src/services/services.ts (a foundation: identity and state use it, so it cannot live in the
// orchestration layer). This re-export only keeps src/gateway/compile.ts compiling until its rewrite
// imports '../services/services.js' directly; then delete this file.
export { ServicePool, ServiceScope, serviceKey, type Service } from '../services/services.js';
