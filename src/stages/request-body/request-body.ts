// request-body stage (order 95): the route reads its request bodies. Its presence makes the request-body
// phase run in front of it (src/server/body-phase.ts): the body is read once up to the route's limit and
// decoded by Content-Type, so a malformed JSON document, form or multipart body is refused with 400 and
// the position of the fault before the upstream sees it. The stage itself then checks what the phase
// cannot: the accepted media types (415) and a body where one is required. See docs/request-body.md.
import type { CompiledStage, Rejection, StageModule } from '../../pipeline/types.js';
import type { GatewayConfig } from '../../config/schema.js';
import { formatPath, type SemanticIssue } from '../../config/issues.js';
import { parseContentType } from '../../body/index.js';
import { RequestBodySchema, type RequestBodyConfig } from './schema.js';

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);
const BODY_REQUIRED: Rejection = Object.freeze({ status: 400, code: 'body-required', detail: 'this request needs a body' });

export function compileRequestBody(cfg: RequestBodyConfig): CompiledStage {
  const accepted = cfg.contentTypes === undefined ? undefined : new Set(cfg.contentTypes.map(mediaTypeOf));
  const unsupported: Rejection | undefined = accepted === undefined ? undefined : Object.freeze({
    status: 415,
    code: 'unsupported-media-type',
    detail: `this route accepts ${[...accepted].join(', ')}`,
    // RFC 9110 15.5.16: say which types would be accepted
    headers: { 'accept-post': [...accepted].join(', ') },
  });
  const required = cfg.required === true;
  return {
    needsRequestBody: true,
    onRequest(ctx) {
      const b = ctx.body!;
      if (b.kind === 'none') return required && BODY_METHODS.has(ctx.req.method ?? '') ? BODY_REQUIRED : undefined;
      if (accepted !== undefined && (b.contentType === undefined || !accepted.has(b.contentType))) return unsupported;
      return undefined;
    },
  };
}

function mediaTypeOf(s: string): string {
  const r = parseContentType(s);
  return r.ok ? r.value.mediaType : s.toLowerCase();
}

function requestBodyIssues(cfg: GatewayConfig): SemanticIssue[] {
  const out: SemanticIssue[] = [];
  cfg.routes.forEach((r, i) => {
    r.requestBody?.contentTypes?.forEach((t, j) => {
      const p = parseContentType(t);
      const path = formatPath(['routes', i, 'requestBody', 'contentTypes', j]);
      if (!p.ok) out.push({ path, severity: 'error', message: `not a media type (${p.detail}); e.g. "application/json"` });
      else if (Object.keys(p.value.params).length > 0) out.push({ path, severity: 'error', message: 'give the media type without parameters (charsets are checked by the body phase)' });
    });
    if (r.requestBody !== undefined && r.websocket === true) out.push({ path: formatPath(['routes', i, 'requestBody']), severity: 'warning', message: 'WebSocket upgrades carry no body; the block applies to this route\'s other requests only' });
  });
  return out;
}

export const requestBodyStage: StageModule<'requestBody', typeof RequestBodySchema> = {
  name: 'request-body',
  // after authentication and rate limits (no body is read for a caller they refuse), before validation
  order: 95,
  configKey: 'requestBody',
  schema: RequestBodySchema,
  upgrades: 'skip',
  docs: 'docs/request-body.md',
  check: requestBodyIssues,
  compile: compileRequestBody,
};
