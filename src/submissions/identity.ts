import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { Db } from '../db/knex.js';
import type { Clock } from '../lib/clock.js';
import { AuthError, ForbiddenError, InfrastructureError } from '../lib/errors.js';

/** Who is calling. A username in a request body is never trusted: only these sources are. */
export interface Identity {
  name: string;
  via: 'hub-token' | 'hub-cookie' | 'api-token' | 'lti';
  admin: boolean;
  groups: string[];
}

export const NO_IDENTITY =
  'Gofer could not tell who you are. Submit from your notebook in JupyterHub (the Submit button sends your ' +
  'JupyterHub token), or send "Authorization: token <your API token>".';

interface HubUser {
  name: string;
  admin?: boolean;
  groups?: string[];
  scopes?: string[];
}

/** The hub's answer to `GET {api}/user` (JupyterHub's user model; only these fields are read). */
export const hubUserSchema = z
  .object({
    name: z.string().min(1),
    admin: z.boolean().nullish(),
    groups: z.array(z.string()).nullish(),
    scopes: z.array(z.string()).nullish(),
  })
  .passthrough();

/** Parses a hub answer with its schema, or says what was wrong with it. */
export function hubAnswer<T>(schema: z.ZodType<T, z.ZodTypeDef, unknown>, body: string, what: string): T {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new InfrastructureError(`JupyterHub answered ${what} with something that is not JSON: ${JSON.stringify(body.slice(0, 120))}.`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new InfrastructureError(`JupyterHub answered ${what} without a usable ${issue.path.join('.') || 'body'} (${issue.message}).`);
  }
  return parsed.data;
}

/** Asks the hub who owns a token (`GET {api}/user`), caching answers briefly. */
export class HubClient {
  private readonly cache = new Map<string, { user: HubUser | null; until: number }>();

  constructor(
    readonly apiUrl: string,
    private readonly opts: { cacheMs: number; clock: Clock; fetch?: typeof fetch; requiredScopes?: string[] },
  ) {}

  /** Whether the token's scopes reach this service (when the hub reports scopes at all). */
  allows(user: HubUser): boolean {
    const required = this.opts.requiredScopes;
    if (!required?.length || !user.scopes) return true;
    return user.scopes.some((s) => required.includes(s));
  }

  async userForToken(token: string): Promise<HubUser | null> {
    const key = createHash('sha256').update(token).digest('hex');
    const now = this.opts.clock.now();
    const hit = this.cache.get(key);
    if (hit && hit.until > now) return hit.user;
    let res: Response;
    try {
      res = await (this.opts.fetch ?? fetch)(`${this.apiUrl.replace(/\/$/, '')}/user`, {
        headers: { Authorization: `token ${token}` },
        signal: AbortSignal.timeout(5000),
      });
    } catch (err) {
      throw new InfrastructureError(`JupyterHub does not answer at ${this.apiUrl} (${(err as Error).message}); try again in a minute.`);
    }
    let user: HubUser | null = null;
    if (res.ok) {
      const body = hubAnswer(hubUserSchema, await res.text(), '/user');
      user = {
        name: body.name,
        admin: Boolean(body.admin),
        groups: body.groups ?? [],
        ...(body.scopes ? { scopes: body.scopes } : {}),
      };
    } else if (res.status !== 401 && res.status !== 403) {
      throw new InfrastructureError(`JupyterHub answered ${res.status} when asked who a token belongs to; try again in a minute.`);
    }
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(key, { user, until: now + this.opts.cacheMs });
    return user;
  }
}

/** Per-user API tokens for running without a hub (`gofer token create USER`). Stored hashed. */
/**
 * Why a name cannot be a user's (a token's owner), or undefined: JupyterHub-style names, letters
 * and digits with `.`, `_`, `@`, `+` and `-`, at most 128, so it never reads as a path or two words.
 */
export function userNameProblem(name: string): string | undefined {
  if (!name) return 'is empty: give the user name';
  if (name.length > 128) return 'is longer than 128 characters';
  if (!/^[\p{L}\p{N}][\p{L}\p{N}._@+-]*$/u.test(name)) return 'is not a user name: use letters, digits, ".", "_", "@", "+" or "-", starting with a letter or digit';
  return undefined;
}

export class ApiTokenStore {
  static readonly PREFIX = 'gofer_';
  /** Known tokens, briefly: a burst of submissions at a deadline does not look each one up. */
  private readonly cache = new Map<string, { owner: string; until: number }>();
  private static readonly CACHE_MS = 30_000;
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  async create(owner: string, label?: string): Promise<string> {
    const token = ApiTokenStore.PREFIX + randomBytes(24).toString('base64url');
    await this.db('api_tokens').insert({ owner, token_sha256: sha256(token), label: label ?? null, created_at: this.clock.now() });
    return token;
  }

  async owner(token: string): Promise<string | undefined> {
    const key = sha256(token);
    const now = this.clock.now();
    const hit = this.cache.get(key);
    if (hit && hit.until > now) return hit.owner;
    const row = await this.db('api_tokens').select('owner').where({ token_sha256: key }).first();
    const owner = row?.owner as string | undefined;
    if (owner) {
      if (this.cache.size > 10_000) this.cache.clear();
      this.cache.set(key, { owner, until: now + ApiTokenStore.CACHE_MS });
    }
    return owner;
  }

  /** Tokens by owner, oldest first: never the tokens themselves (only their hashes are stored). */
  async list(owner?: string): Promise<Array<{ owner: string; label: string | null; createdAt: number }>> {
    const q = this.db('api_tokens').select('owner', 'label', 'created_at').orderBy([{ column: 'owner' }, { column: 'created_at' }]);
    if (owner) q.where({ owner });
    const rows = (await q) as Array<{ owner: string; label: string | null; created_at: number | string }>;
    return rows.map((r) => ({ owner: r.owner, label: r.label, createdAt: Number(r.created_at) }));
  }

  /** Revokes every token of a user (a running service forgets them within 30 s; this process at once). */
  async revoke(owner: string): Promise<number> {
    for (const [key, v] of this.cache) if (v.owner === owner) this.cache.delete(key);
    return this.db('api_tokens').where({ owner }).delete();
  }
}

/**
 * Signed, expiring values (OAuth state, link tokens). Every value is signed for one purpose
 * and only verifies for that purpose, so a value handed out for one use can never be replayed as
 * another.
 */
export type SignedPurpose = 'hub-oauth-state' | 'hub-link';

export class Signer {
  constructor(private readonly secret: string) {}

  sign(purpose: SignedPurpose, value: object, ttlMs: number, now: number): string {
    const body = Buffer.from(JSON.stringify({ ...value, exp: now + ttlMs })).toString('base64url');
    return `${body}.${this.mac(purpose, body)}`;
  }

  verify<T extends object>(purpose: SignedPurpose, signed: string | undefined, now: number): T | undefined {
    const checked = this.check<T>(purpose, signed, now);
    return checked.ok ? checked.value : undefined;
  }

  /** Like `verify`, and says why a value is refused: it is not one of ours (or was cut short), or it has expired. */
  check<T extends object>(purpose: SignedPurpose, signed: string | undefined, now: number): { ok: true; value: T } | { ok: false; why: 'invalid' | 'expired' } {
    const [body, mac] = (signed ?? '').split('.');
    if (!body || !mac) return { ok: false, why: 'invalid' };
    const expected = Buffer.from(this.mac(purpose, body));
    const given = Buffer.from(mac);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return { ok: false, why: 'invalid' };
    try {
      const value = JSON.parse(Buffer.from(body, 'base64url').toString()) as T & { exp: number };
      return value.exp > now ? { ok: true, value } : { ok: false, why: 'expired' };
    } catch {
      return { ok: false, why: 'invalid' };
    }
  }

  /** A MAC of `text` for one purpose (e.g. the CSRF token that goes with a page session). */
  tag(purpose: string, text: string): string {
    return this.mac(`tag:${purpose}`, text);
  }

  private mac(purpose: string, body: string): string {
    return createHmac('sha256', this.secret).update(`${purpose}\u0000${body}`).digest('base64url');
  }
}

/** Resolves the caller from an `Authorization: token …` (or `Bearer …`) header. */
export class Authenticator {
  constructor(
    private readonly hub: HubClient | undefined,
    private readonly tokens: ApiTokenStore,
  ) {}

  async fromHeader(header: string | undefined): Promise<Identity | undefined> {
    if (!header) return undefined;
    const m = /^(?:token|bearer)\s+(\S+)$/i.exec(header.trim());
    if (!m) throw new AuthError('The Authorization header should be "token <token>".');
    const token = m[1]!;
    if (token.startsWith(ApiTokenStore.PREFIX)) {
      const owner = await this.tokens.owner(token);
      if (!owner) throw new AuthError('This API token is not valid (it may have been revoked). Ask course staff for a new one.');
      return { name: owner, via: 'api-token', admin: false, groups: [] };
    }
    if (!this.hub) throw new AuthError('This Gofer is not connected to a JupyterHub, so it cannot check hub tokens. Use a Gofer API token.');
    const user = await this.hub.userForToken(token);
    if (!user) throw new AuthError('JupyterHub does not recognise your token; log in to JupyterHub again and resubmit.');
    if (!this.hub.allows(user)) {
      throw new ForbiddenError('Your JupyterHub token does not allow access to this service (it needs the access:services scope). Ask course staff to give your users that scope.');
    }
    return { name: user.name, via: 'hub-token', admin: Boolean(user.admin), groups: user.groups ?? [] };
  }
}

export function sha256(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}
