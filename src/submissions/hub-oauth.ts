import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseCookies, serialize } from 'cookie';
import express, { type Request, type Response, type Router } from 'express';
import type { Clock } from '../lib/clock.js';
import { AuthError, InfrastructureError } from '../lib/errors.js';
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
}

export function hubOAuthSettings(env: NodeJS.ProcessEnv, prefix: string): HubOAuthSettings | undefined {
  if (!env.JUPYTERHUB_API_TOKEN || !env.JUPYTERHUB_API_URL) return undefined;
  return {
    clientId: env.JUPYTERHUB_CLIENT_ID ?? `service-${env.JUPYTERHUB_SERVICE_NAME ?? 'gofer'}`,
    clientSecret: env.JUPYTERHUB_API_TOKEN,
    callbackUrl: env.JUPYTERHUB_OAUTH_CALLBACK_URL ?? `${prefix}oauth_callback`,
    hubUrl: `${env.JUPYTERHUB_HOST ?? ''}${env.JUPYTERHUB_BASE_URL ?? '/'}`,
  };
}

/** The cookie secret: configured, from GOFER_SECRET, or made once and kept in the data directory. */
export function cookieSecret(configured: string | undefined, env: NodeJS.ProcessEnv, dataDir: string): string {
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

/**
 * Browsers log in through the hub: Gofer is an OAuth client of the hub, keeps its own signed
 * session cookie, and requires an XSRF token (double-submit cookie) on cookie-authenticated POSTs.
 */
export class HubOAuth {
  private readonly signer: Signer;

  constructor(
    private readonly settings: HubOAuthSettings,
    private readonly hub: HubClient,
    secret: string,
    private readonly clock: Clock,
    private readonly prefix: string,
  ) {
    this.signer = new Signer(secret);
  }

  identity(req: Request): Identity | undefined {
    const cookies = parseCookies(req.get('cookie') ?? '');
    const session = this.signer.verify<{ name: string; admin: boolean; groups: string[] }>('hub-session', cookies[SESSION_COOKIE], this.clock.now());
    return session && { name: session.name, admin: session.admin, groups: session.groups, via: 'hub-cookie' };
  }

  /** The XSRF token of this browser's hub session, to put into Gofer's own forms. */
  xsrfToken(req: Request): string | undefined {
    return parseCookies(req.get('cookie') ?? '')[XSRF_COOKIE];
  }

  checkXsrf(req: Request): boolean {
    const cookie = parseCookies(req.get('cookie') ?? '')[XSRF_COOKIE];
    const given = req.get('x-xsrftoken') ?? (req.body as Record<string, unknown> | undefined)?._xsrf;
    return Boolean(cookie) && cookie === given;
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
      const now = this.clock.now();
      res.append('Set-Cookie', serialize(STATE_COOKIE, '', cookieOptions(this.prefix, 0, req.secure)));
      res.append('Set-Cookie', serialize(SESSION_COOKIE, this.signer.sign('hub-session', { name: user.name, admin: Boolean(user.admin), groups: user.groups ?? [] }, SESSION_MS, now), cookieOptions(this.prefix, SESSION_MS / 1000, req.secure)));
      res.append('Set-Cookie', serialize(XSRF_COOKIE, randomBytes(16).toString('hex'), { ...cookieOptions(this.prefix, SESSION_MS / 1000, req.secure), httpOnly: false }));
      res.redirect(302, saved.next);
    });
    router.get('/logout', (_req: Request, res: Response) => {
      res.append('Set-Cookie', serialize(SESSION_COOKIE, '', cookieOptions(this.prefix, 0)));
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
    const json = (await res.json()) as { access_token?: string };
    if (!json.access_token) throw new AuthError('JupyterHub answered the login without a token.');
    return json.access_token;
  }
}

function cookieOptions(prefix: string, maxAgeSeconds: number, secure = false) {
  return { path: prefix, httpOnly: true, sameSite: 'lax' as const, maxAge: maxAgeSeconds, secure };
}

/** Only a path under our own prefix: never an open redirect. */
function safeNext(next: string, prefix: string): string {
  return next.startsWith(prefix) && !next.startsWith('//') && !next.includes('\\') ? next : prefix;
}
