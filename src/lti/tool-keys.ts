import { createPrivateKey, type KeyObject } from 'node:crypto';
import { z } from 'zod';

/** The tool's signing material for a registration, and where its tokens come from. */
export interface ToolSigningKey {
  kid: string;
  privateKey: KeyObject;
  /** Where the token request goes (the platform's access token endpoint). */
  tokenUrl: string;
  /** The assertion's `aud`: the platform's authorization server, else its token URL. */
  audience: string;
}

export interface ToolKeySource {
  /** undefined when no platform is registered for (issuer, client id). */
  signingKey(issuer: string, clientId: string): Promise<ToolSigningKey | undefined>;
}

/** The parts of ltijs's database plugin this reads (KnexLtiPlugin). */
export interface LtijsDocuments {
  Get(key: string | false, collection: string, query?: Record<string, unknown>): Promise<Array<Record<string, unknown>> | false>;
}

const platformDocSchema = z.object({
  kid: z.string().min(1),
  accesstokenEndpoint: z.string().url(),
  authorizationServer: z.string().optional().nullable(),
});
const privateKeyDocSchema = z.object({ key: z.string().min(1) });

/**
 * The tool key ltijs generated when the platform was registered (`registerPlatform`): the
 * platform document names its kid and token endpoint, the private key is stored encrypted.
 */
export class LtijsToolKeys implements ToolKeySource {
  private readonly parsed = new Map<string, KeyObject>();

  constructor(
    private readonly documents: LtijsDocuments,
    private readonly encryptionKey: string,
  ) {}

  async signingKey(issuer: string, clientId: string): Promise<ToolSigningKey | undefined> {
    const platforms = await this.documents.Get(false, 'platform', { platformUrl: issuer, clientId });
    if (!platforms || !platforms[0]) return undefined;
    const doc = platformDocSchema.parse(platforms[0]);
    let privateKey = this.parsed.get(doc.kid);
    if (!privateKey) {
      const keys = await this.documents.Get(this.encryptionKey, 'privatekey', { kid: doc.kid });
      if (!keys || !keys[0]) throw new Error(`the tool's private key ${doc.kid} for ${issuer} (client id ${clientId}) is missing; register the platform again`);
      // ltijs writes PKCS#1 PEM; createPrivateKey reads PKCS#1 and PKCS#8 alike
      privateKey = createPrivateKey(privateKeyDocSchema.parse(keys[0]).key);
      this.parsed.set(doc.kid, privateKey);
    }
    return { kid: doc.kid, privateKey, tokenUrl: doc.accesstokenEndpoint, audience: doc.authorizationServer || doc.accesstokenEndpoint };
  }
}
