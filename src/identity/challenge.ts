// WWW-Authenticate challenges (RFC 9110 11.6.1) for RFC 6750 (Bearer), RFC 9449 (DPoP), RFC 9470
// (step-up) and the ApiKey scheme. Built from fixed parameter names; values are quoted-strings with `\`
// and `"` escaped, and anything outside visible ASCII dropped, so no client data can break the header.

export interface ChallengeParams {
  readonly error?: string;
  readonly error_description?: string;
  readonly scope?: string;
  /** RFC 9470 */
  readonly acr_values?: string;
  readonly max_age?: number;
  /** RFC 9449: algorithms accepted for DPoP proofs (DPoP scheme only) */
  readonly algs?: string;
}

const ORDER: readonly (keyof ChallengeParams)[] = ['error', 'error_description', 'scope', 'acr_values', 'max_age', 'algs'];

export function quote(v: string): string {
  // eslint-disable-next-line no-control-regex
  return `"${v.replace(/[^\x20-\x7e]/g, '').replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/** One challenge per scheme, comma-separated (one header field). `algs` is only sent with DPoP. */
export function wwwAuthenticate(schemes: readonly string[], realm: string | undefined, params: ChallengeParams = {}): string {
  const out: string[] = [];
  for (const scheme of schemes) {
    const parts: string[] = [];
    if (realm !== undefined) parts.push(`realm=${quote(realm)}`);
    for (const k of ORDER) {
      const v = params[k];
      if (v === undefined) continue;
      if (k === 'algs' && scheme !== 'DPoP') continue;
      parts.push(k === 'max_age' ? `${k}=${Math.max(0, Math.floor(v as number))}` : `${k}=${quote(String(v))}`);
    }
    out.push(parts.length > 0 ? `${scheme} ${parts.join(', ')}` : scheme);
  }
  return out.join(', ');
}
