import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseCookies, serialize } from 'cookie';
import express, { type Request, type Response, type Router } from 'express';
import { z } from 'zod';
import type { Environment } from '../config/load.js';
import type { Clock } from '../lib/clock.js';
import { AuthError, InfrastructureError } from '../lib/errors.js';
import { safeEqual } from '../lib/safe-equal.js';
import type { BrowserSessions } from './browser-sessions.js';
import type { HubClient, Identity } from './identity.js';
import { Signer } from './identity.js';

export const SESSION_COOKIE = 'gofer-session';
export const XSRF_COOKIE = '_xsrf';
const STATE_COOKIE = 'gofer-oauth-state';
const SESSION_MS = 8 * 3600 * 1000;

/** What the hub tells a managed service about its OAuth client (JupyterHub 2+ sets these). */
export interface HubOAuthSettings {
  clientId: string;
  clientSecret: string;
  /** Path (or URL) the hub redirects back to: `{prefix}oauth_callback`. */
  callbackUrl: string;
  /** Where browsers find the hub: `{JUPYTERHUB_HOST}{JUPYTERHUB_BASE_URL}`. */
  hubUrl: string;
  /**
   * The hub's own origin (`hub.publicUrl`, else `JUPYTERHUB_HOST`); unset, the origin the request
   * was addressed to, which behind the hub's proxy is the hub's.
   */
  hubOrigin?: string;
}

export function hubOAuthSettings(env: Environment, prefix: string, publicUrl?: string): HubOAuthSettings | undefined {
  if (!env.JUPYTERHUB_API_TOKEN || !env.JUPYTERHUB_API_URL) return undefined;
  const origin = publicUrl ?? env.JUPYTERHUB_HOST;
  return {
    clientId: env.JUPYTERHUB_CLIENT_ID ?? `service-${env.JUPYTERHUB_SERVICE_NAME ?? 'gofer'}`,
    clientSecret: env.JUPYTERHUB_API_TOKEN,
    callbackUrl: env.JUPYTERHUB_OAUTH_CALLBACK_URL ?? `${prefix}oauth_callback`,
    hubUrl: `${env.JUPYTERHUB_HOST ?? ''}${env.JUPYTERHUB_BASE_URL ?? '/'}`,
    ...(origin ? { hubOrigin: new URL(origin).origin } : {}),
  };
}

/**
 * Where a browser request comes from: its Origin, or the origin of its Referer when it has no
 * Origin. `null` (a sandboxed or privacy-stripped origin) is no origin.
 */
export function requestOrigin(req: Pick<Request, 'get'>): string | undefined {
  const origin = req.get('origin');
  if (origin !== undefined) return origin === 'null' ? undefined : origin;
  const referer = req.get('referer');
  if (!referer) return undefined;
  try {
    return new URL(referer).origin;
  } catch {
    return undefined;
  }
}

/**
 * Whether a request comes from a page of the hub's own origin: the notebook pages the old
 * gofer_submit button runs in cannot read Gofer's `_xsrf` cookie (it is scoped to Gofer's
 * prefix), but a browser will not let another origin claim to be the hub's.
 */
export function fromHubOrigin(req: Pick<Request, 'get' | 'protocol'>, hubOrigin?: string): boolean {
  const from = requestOrigin(req);
  if (!from) return false;
  const host = req.get('host');
  const expected = hubOrigin ?? (host ? `${req.protocol}://${host}` : undefined);
  return expected !== undefined && from === expected;
}

/** The cookie secret: configured, from GOFER_SECRET, or made once and kept in the data directory. */
export function cookieSecret(configured: string | undefined, env: Environment, dataDir: string): string {
  if (configured) return configured;
  if (env.GOFER_SECRET) return env.GOFER_SECRET;
  const file = path.join(dataDir, 'cookie-secret');
  if (!existsSync(file)) {
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(file, randomBytes(32).toString('hex'), { mode: 0o600 });
    chmodSync(file, 0o600);
  }
  return readFileSync(file, 'utf8').trim();
}

/** A hub login as the session table keeps it. */
interface HubSession {
  name: string;
  admin: boolean;
  groups: string[];
}

/**
 * Browsers log in through the hub: Gofer is an OAuth client of the hub and keeps its own session
 * (a random id in a cookie, the session in the database, revoked at logout). Cookie-authenticated
 * POSTs need the session's XSRF token: an HMAC of the session id with the server secret, also
 * handed to page scripts in the `_xsrf` cookie.
 */
export class HubOAuth {
  private readonly signer: Signer;

  constructor(
    private readonly settings: HubOAuthSettings,
    private readonly hub: HubClient,
    secret: string,
    private readonly clock: Clock,
    private readonly prefix: string,
    private readonly sessions: BrowserSessions,
  ) {
    this.signer = new Signer(secret);
  }

  async identity(req: Request): Promise<Identity | undefined> {
    const session = await this.sessions.get<HubSession>('hub', sessionId(req), this.clock.now());
    return session && { name: session.name, admin: session.admin, groups: session.groups, via: 'hub-cookie' };
  }

  /** The XSRF token of this browser's hub session, to put into Gofer's own forms. */
  async xsrfToken(req: Request): Promise<string | undefined> {
    const id = sessionId(req);
    return id && (await this.sessions.get('hub', id, this.clock.now())) ? this.xsrfFor(id) : undefined;
  }

  /** Whether the request comes from a page of the hub's own origin (see `fromHubOrigin`). */
  fromHub(req: Request): boolean {
    return fromHubOrigin(req, this.settings.hubOrigin);
  }

  /** Whether the request carries the XSRF token of the session it comes with (header or `_xsrf` field). */
  checkXsrf(req: Request): boolean {
    const id = sessionId(req);
    const given = req.get('x-xsrftoken') ?? (req.body as Record<string, unknown> | undefined)?._xsrf;
    return Boolean(id) && typeof given === 'string' && safeEqual(given, this.xsrfFor(id!));
  }

  private xsrfFor(sessionId: string): string {
    return this.signer.tag('xsrf', sessionId);
  }

  router(): Router {
    const router = express.Router();
    router.get('/login', (req, res) => {
      const state = randomBytes(16).toString('hex');
      const next = safeNext(String(req.query.next ?? ''), this.prefix);
      res.append('Set-Cookie', serialize(STATE_COOKIE, this.signer.sign('hub-oauth-state', { state, next }, 10 * 60_000, this.clock.now()), cookieOptions(this.prefix, 600, req.secure)));
      const q = new URLSearchParams({ client_id: this.settings.clientId, redirect_uri: this.settings.callbackUrl, response_type: 'code', state });
      res.redirect(302, `${this.settings.hubUrl.replace(/\/$/, '')}/hub/api/oauth2/authorize?${q}`);
    });
    router.get('/oauth_callback', async (req, res) => {
      const saved = this.signer.verify<{ state: string; next: string }>('hub-oauth-state', parseCookies(req.get('cookie') ?? '')[STATE_COOKIE], this.clock.now());
      if (!saved || saved.state !== req.query.state) throw new AuthError('This login link has expired or was not started here. Open Gofer again from JupyterHub.');
      if (typeof req.query.code !== 'string') throw new AuthError('JupyterHub did not complete the login. Open Gofer again from JupyterHub.');
      const token = await this.exchange(req.query.code);
      const user = await this.hub.userForToken(token);
      if (!user) throw new AuthError('JupyterHub did not accept the login. Open Gofer again from JupyterHub.');
      const session: HubSession = { name: user.name, admin: Boolean(user.admin), groups: user.groups ?? [] };
      const id = await this.sessions.create('hub', session, SESSION_MS, this.clock.now());
      res.append('Set-Cookie', serialize(STATE_COOKIE, '', cookieOptions(this.prefix, 0, req.secure)));
      res.append('Set-Cookie', serialize(SESSION_COOKIE, id, cookieOptions(this.prefix, SESSION_MS / 1000, req.secure)));
      res.append('Set-Cookie', serialize(XSRF_COOKIE, this.xsrfFor(id), { ...cookieOptions(this.prefix, SESSION_MS / 1000, req.secure), httpOnly: false }));
      res.redirect(302, saved.next);
    });
    router.get('/logout', async (req: Request, res: Response) => {
      const id = sessionId(req);
      if (id) await this.sessions.revoke(id, this.clock.now());
      res.append('Set-Cookie', serialize(SESSION_COOKIE, '', cookieOptions(this.prefix, 0, req.secure)));
      res.append('Set-Cookie', serialize(XSRF_COOKIE, '', { ...cookieOptions(this.prefix, 0, req.secure), httpOnly: false }));
      res.type('text/plain').send('You are logged out of Gofer.\n');
    });
    return router;
  }

  private async exchange(code: string): Promise<string> {
    const body = new URLSearchParams({
      client_id: this.settings.clientId,
      client_secret: this.settings.clientSecret,
      grant_type: 'authorization_code',
      code,
      redirect_uri: this.settings.callbackUrl,
    });
    let res: globalThis.Response;
    try {
      res = await fetch(`${this.hub.apiUrl.replace(/\/$/, '')}/oauth2/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body,
        signal: AbortSignal.timeout(5000),
      });
    } catch (err) {
      throw new InfrastructureError(`JupyterHub does not answer (${(err as Error).message}); try again in a minute.`);
    }
    if (!res.ok) throw new AuthError(`JupyterHub refused the login (${res.status}). Open Gofer again from JupyterHub.`);
    const parsed = tokenAnswerSchema.safeParse(safeJson(await res.text()));
    if (!parsed.success) throw new AuthError('JupyterHub answered the login without a token.');
    return parsed.data.access_token;
  }
}

/** The hub's answer to the OAuth token request (only the token is read). */
export const tokenAnswerSchema = z.object({ access_token: z.string().min(1) }).passthrough();

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function sessionId(req: Request): string | undefined {
  return parseCookies(req.get('cookie') ?? '')[SESSION_COOKIE] || undefined;
}

function cookieOptions(prefix: string, maxAgeSeconds: number, secure = false) {
  return { path: prefix, httpOnly: true, sameSite: 'lax' as const, maxAge: maxAgeSeconds, secure };
}

/** Only a path under our own prefix: never an open redirect. */
function safeNext(next: string, prefix: string): string {
  return next.startsWith(prefix) && !next.startsWith('//') && !next.includes('\\') ? next : prefix;
}
