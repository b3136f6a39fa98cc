import { compactVerify, importJWK, type JWK } from 'jose';

/**
 * Checks a JWT signed by the tool (a client assertion, a deep-linking response) exactly as edX
 * does, because its laxness and its strictness both shape what a tool must do:
 * - the tool's keyset URL is fetched on every call (no cache), and every key is tried, `kid`
 *   ignored; when all fail, the error of the LAST key is the one reported;
 * - only the signature and, when present, `iat`, `nbf`, `exp` are checked, with zero leeway
 *   (PyJWT semantics: `iat` later than now, even by a fraction of a second, is refused);
 *   `aud`, `iss`, `sub` and `jti` are not looked at.
 * The error kinds are the OAuth error codes edX's token endpoint maps PyJWT's exceptions to.
 */
export type ToolJwtError = 'invalid_client' | 'invalid_grant' | 'unidentified_error';

export type ToolJwtResult = { ok: true; payload: Record<string, unknown> } | { ok: false; error: ToolJwtError; reason: string };

const ALGORITHMS = ['RS256', 'RS512'];

class Refusal extends Error {
  constructor(readonly kind: ToolJwtError, reason: string) {
    super(reason);
  }
}

export async function verifyToolJwt(token: string, keysetUrl: string, nowMs: number): Promise<ToolJwtResult> {
  let keys: JWK[];
  try {
    keys = await fetchKeyset(keysetUrl);
  } catch (err) {
    return { ok: false, error: 'invalid_client', reason: `tool keyset ${keysetUrl}: ${(err as Error).message}` };
  }
  for (let i = 0; i < keys.length; i++) {
    try {
      return { ok: true, payload: await decodeWith(token, keys[i]!, nowMs / 1000) };
    } catch (err) {
      if (i === keys.length - 1) {
        const refusal = err instanceof Refusal ? err : new Refusal('unidentified_error', String((err as Error)?.message ?? err));
        return { ok: false, error: refusal.kind, reason: refusal.message };
      }
    }
  }
  return { ok: false, error: 'invalid_client', reason: 'the tool keyset has no usable key' };
}

/** Like PyJWKClient(url).get_jwk_set(): keys PyJWT cannot use are skipped; none usable is an error. */
async function fetchKeyset(url: string): Promise<JWK[]> {
  const res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
  if (!res.ok) throw new Error(`answered ${res.status}`);
  const body = (await res.json()) as { keys?: unknown };
  const keys = Array.isArray(body?.keys) ? (body.keys as JWK[]) : [];
  if (keys.length === 0) throw new Error('the JWK Set did not contain any keys');
  const usable = keys.filter((k) => k && typeof k === 'object' && ['RSA', 'EC', 'OKP', 'oct'].includes(String(k.kty)));
  if (usable.length === 0) throw new Error('the JWK Set did not contain any usable keys');
  return usable;
}

/** One attempt of jwt.decode(token, key, algorithms=[RS256, RS512]) in PyJWT's order of checks. */
async function decodeWith(token: string, jwk: JWK, now: number): Promise<Record<string, unknown>> {
  const parts = token.split('.');
  if (parts.length !== 3) throw new Refusal('invalid_grant', 'Not enough segments');
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8'));
  } catch {
    throw new Refusal('invalid_grant', 'Invalid header padding or string');
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) throw new Refusal('invalid_grant', 'Invalid header string: must be a json object');
  const alg = (header as { alg?: unknown }).alg;
  if (typeof alg !== 'string' || !ALGORITHMS.includes(alg)) throw new Refusal('unidentified_error', 'The specified alg value is not allowed');
  if (jwk.kty !== 'RSA') throw new Refusal('unidentified_error', 'Expecting a PEM-formatted key.');
  let key;
  try {
    key = await importJWK({ ...jwk, alg }, alg);
  } catch (err) {
    throw new Refusal('unidentified_error', `unusable key: ${(err as Error).message}`);
  }
  let payloadBytes: Uint8Array;
  try {
    ({ payload: payloadBytes } = await compactVerify(token, key, { algorithms: ALGORITHMS }));
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') throw new Refusal('invalid_client', 'Signature verification failed');
    throw new Refusal('invalid_grant', `Invalid token: ${(err as Error).message}`);
  }
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(payloadBytes).toString('utf8'));
  } catch {
    throw new Refusal('invalid_grant', 'Invalid payload string');
  }
  if (!payload || typeof payload !== 'object' || Array.isArray(payload)) throw new Refusal('invalid_grant', 'Invalid payload string: must be a json object');
  const claims = payload as Record<string, unknown>;
  if ('iat' in claims) {
    const iat = pyInt(claims.iat);
    if (iat === null) throw new Refusal('unidentified_error', 'Issued At claim (iat) must be an integer.');
    if (iat > now) throw new Refusal('unidentified_error', 'The token is not yet valid (iat)');
  }
  if ('nbf' in claims) {
    const nbf = pyInt(claims.nbf);
    if (nbf === null) throw new Refusal(typeof claims.nbf === 'string' ? 'invalid_grant' : 'unidentified_error', 'Not Before claim (nbf) must be an integer.');
    if (nbf > now) throw new Refusal('unidentified_error', 'The token is not yet valid (nbf)');
  }
  if ('exp' in claims) {
    const exp = pyInt(claims.exp);
    if (exp === null) throw new Refusal(typeof claims.exp === 'string' ? 'invalid_grant' : 'unidentified_error', 'Expiration Time claim (exp) must be an integer.');
    if (exp <= now) throw new Refusal('unidentified_error', 'Signature has expired');
  }
  return claims;
}

/** Python's int(): truncates numbers, parses integer strings, null for anything else. */
function pyInt(value: unknown): number | null {
  if (typeof value === 'number' && Number.isFinite(value)) return Math.trunc(value);
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'string' && /^\s*[+-]?\d+\s*$/.test(value)) return Number(value.trim());
  return null;
}
