import { randomUUID } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair, jwtVerify, type JWK, type JWTPayload, type KeyLike } from 'jose';

interface PlatformKey {
  kid: string;
  privateKey: KeyLike;
  publicKey: KeyLike;
  jwk: JWK;
}

/**
 * The platform's RSA signing keys, one per client id: edX keeps a key pair per "passport", and a
 * passport is what a client id stands for, so components sharing a client id share a key and an
 * access token from one of them is valid at the other's endpoints (and nowhere else).
 * Only the current key is published and accepted: after a rotation edX knows nothing of the old one.
 */
export class PlatformKeys {
  private readonly keys = new Map<string, PlatformKey>();

  private constructor(private readonly clientIds: string[]) {}

  static async create(clientIds: Iterable<string>): Promise<PlatformKeys> {
    const keys = new PlatformKeys([...new Set(clientIds)]);
    await keys.rotate();
    return keys;
  }

  async rotate(): Promise<void> {
    const fresh = await Promise.all(this.clientIds.map(async (clientId) => [clientId, await newKey()] as const));
    // Swapped together once all exist, so no request sees some passports rotated and others not.
    for (const [clientId, key] of fresh) this.keys.set(clientId, key);
  }

  private key(clientId: string): PlatformKey {
    const key = this.keys.get(clientId);
    if (!key) throw new Error(`no platform key for client id ${clientId}`);
    return key;
  }

  kid(clientId: string): string {
    return this.key(clientId).kid;
  }

  jwks(clientId: string): { keys: JWK[] } {
    return { keys: [this.key(clientId).jwk] };
  }

  /** Signs claims with `iat` now (whole seconds, as edX floors them) and `exp = iat + lifetime`. */
  async sign(clientId: string, claims: Record<string, unknown>, nowMs: number, lifetimeSeconds = 3600): Promise<string> {
    const key = this.key(clientId);
    const iat = Math.floor(nowMs / 1000);
    return new SignJWT({ ...claims, iat, exp: iat + lifetimeSeconds } as JWTPayload)
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: key.kid })
      .sign(key.privateKey);
  }

  /** Verifies a token this platform issued for the client id: signature, `exp` and `iss`; throws otherwise. */
  async verify(clientId: string, token: string, issuer: string, nowMs: number): Promise<JWTPayload> {
    const { payload } = await jwtVerify(token, this.key(clientId).publicKey, {
      algorithms: ['RS256', 'RS512'],
      issuer,
      currentDate: new Date(nowMs),
    });
    return payload;
  }
}

async function newKey(): Promise<PlatformKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
  const kid = randomUUID();
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  return { kid, privateKey, publicKey, jwk };
}
