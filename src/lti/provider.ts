import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import type { Express, Request, Response } from 'express';
import type { Environment } from '../config/load.js';
import { ltiCookies, type Config, type CookieAttributes, type PlatformConfig } from '../config/schema.js';
import type { Db } from '../db/knex.js';
import type { Clock } from '../lib/clock.js';
import { ConfigError, GoferError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { html } from '../lib/html.js';
import { messagePage, page } from '../lib/page.js';
import { KnexLtiPlugin } from './knex-plugin.js';
import { claimsFromLtijs, isStaff, type LaunchService, type LtiSession } from './launch.js';

// ltijs is CommonJS and a process-wide singleton: set up once per process.
const require = createRequire(import.meta.url);

/** The parts of ltijs's Provider that Gofer uses (its own typings are out of date). */
interface LtijsProvider {
  app: Express;
  setup(key: string, db: { plugin: KnexLtiPlugin }, options: Record<string, unknown>): LtijsProvider;
  deploy(options: { serverless: boolean; silent: boolean }): Promise<boolean>;
  onConnect(cb: (token: Record<string, any>, req: Request, res: Response) => unknown): void;
  onDeepLinking(cb: (token: Record<string, any>, req: Request, res: Response) => unknown): void;
  onInvalidToken(cb: (req: Request, res: Response) => unknown): void;
  onSessionTimeout(cb: (req: Request, res: Response) => unknown): void;
  onUnregisteredPlatform(cb: (req: Request, res: Response) => unknown): void;
  registerPlatform(p: Record<string, unknown>): Promise<unknown>;
  deletePlatform(url: string, clientId: string): Promise<boolean>;
  DeepLinking: { createDeepLinkingForm(token: unknown, items: unknown[], options: Record<string, unknown>): Promise<string> };
}

export interface LtiMount {
  /** ltijs's express app: mount at /lti (launch /lti, login /lti/login, keyset /lti/keys). */
  app: Express;
  provider: LtijsProvider;
}

/** The encryption key for ltijs's stored keys and tokens; refuses to start without one outside development. */
export function ltiEncryptionKey(config: Pick<Config, 'lti' | 'dataDir'>, env: Environment): string {
  const key = config.lti.encryptionKey ?? env.GOFER_LTI_KEY;
  if (key) return key;
  if (!config.lti.development) {
    throw new ConfigError('LTI needs an encryption key: set GOFER_LTI_KEY (or lti.encryptionKey) to a long random secret. Only `lti.development: true` may run without one.');
  }
  const file = path.join(config.dataDir, 'lti-dev-key');
  if (!existsSync(file)) {
    mkdirSync(config.dataDir, { recursive: true });
    writeFileSync(file, randomBytes(32).toString('hex'), { mode: 0o600 });
  }
  return readFileSync(file, 'utf8').trim();
}

/** ltijs on Gofer's database, deployed in serverless mode, with no handlers yet. */
export async function createProvider(deps: { config: Config; db: Db; clock: Clock; log: Logger; env: Environment }): Promise<LtijsProvider> {
  const { config } = deps;
  const lti = require('ltijs').Provider as LtijsProvider;
  const key = ltiEncryptionKey(config, deps.env);
  lti.setup(key, { plugin: new KnexLtiPlugin(deps.db, deps.clock, deps.log) }, {
    appRoute: '/',
    loginRoute: '/login',
    keysetRoute: '/keys',
    // Partitioned is added on the way out (partitionCrossSiteCookies): ltijs cannot set it
    cookies: { secure: ltiCookies(config.lti).secure, sameSite: ltiCookies(config.lti).sameSite },
    devMode: false,
    // Gofer's pages are its own; ltijs needs no cross-origin access
    cors: false,
  });
  const before = new Set(process.listeners('SIGINT'));
  await lti.deploy({ serverless: true, silent: true });
  // ltijs exits the process on SIGINT; Gofer's own shutdown handles signals
  for (const l of process.listeners('SIGINT')) if (!before.has(l)) process.off('SIGINT', l);
  return lti;
}

/**
 * Sets up ltijs with Gofer's launch handling. Pages after the launch are Gofer's own: `openPage`
 * starts their session (a cookie) and gives their address.
 */
export async function setupLti(deps: {
  config: Config;
  db: Db;
  clock: Clock;
  log: Logger;
  env: Environment;
  launches: LaunchService;
  /** Where platforms and browsers reach Gofer. */
  toolUrl: string;
  openPage: (session: LtiSession, req: Request, res: Response) => Promise<string>;
  assignmentsForDeepLinking: (token: Record<string, any>) => Array<{ id: string; title: string }>;
}): Promise<LtiMount> {
  const { config, log } = deps;
  const lti = await createProvider(deps);

  const problem = (res: Response, status: number, title: string, message: string): void => {
    res.status(status).type('html').send(messagePage(title, message));
  };
  // ltijs runs on express 4, which leaves a rejected handler unhandled: each handler answers its own errors.
  const answered =
    <A extends unknown[]>(what: string, fn: (req: Request, res: Response, ...rest: A) => Promise<unknown>) =>
    async (req: Request, res: Response, ...rest: A): Promise<void> => {
      try {
        await fn(req, res, ...rest);
      } catch (err) {
        failed(what, req, res, err);
      }
    };
  const failed = (what: string, req: Request, res: Response, err: unknown): void => {
    const known = err instanceof GoferError && err.status < 500;
    if (!known) log.error(`LTI ${what} failed`, { method: req.method, path: req.originalUrl.split('?')[0], error: (err as Error)?.stack ?? String(err) });
    if (res.headersSent) return;
    if (known) return problem(res, (err as GoferError).status, 'Not possible', (err as Error).message);
    problem(res, 500, 'Gofer failed', 'Gofer could not finish this request; nothing was changed. Launch the assignment again from the course, and tell the course team if it keeps happening.');
  };
  lti.onConnect((token, req, res) =>
    answered('launch', async () => {
      const outcome = await deps.launches.launch(claimsFromLtijs(token));
      if (!outcome.ok) return problem(res, outcome.status ?? 400, outcome.title, outcome.message);
      log.info('launch', { issuer: outcome.session.issuer, course: outcome.session.course, assignment: outcome.session.assignment, staff: outcome.session.staff });
      return res.redirect(303, await deps.openPage(outcome.session, req, res));
    })(req, res),
  );
  lti.onDeepLinking((token, req, res) =>
    answered('deep linking', async () => {
      const refused = deepLinkRefusal(token);
      if (refused) return problem(res, ...refused);
      const ltik = res.locals.ltik as string;
      const items = deps
        .assignmentsForDeepLinking(token)
        .map((a) => html`<li><form method="post" action="deeplink?ltik=${encodeURIComponent(ltik)}"><input type="hidden" name="assignment" value="${a.id}"><button type="submit">${a.title}</button></form></li>`);
      res.type('html').send(page('Choose an assignment', html`<p>Pick the notebook assignment this component is:</p><ul>${items}</ul>`));
    })(req, res),
  );
  lti.app.post(
    '/deeplink',
    answered('deep linking', async (req: Request, res: Response) => {
      const token = res.locals.token as Record<string, any> | undefined;
      const refused = deepLinkRefusal(token);
      if (refused) return problem(res, ...refused);
      const chosen = String((req.body as Record<string, unknown> | undefined)?.assignment ?? '');
      const entry = deps.assignmentsForDeepLinking(token!).find((a) => a.id === chosen);
      if (!entry) return problem(res, 400, 'Unknown assignment', 'Choose one of the listed assignments.');
      const launchUrl = `${deps.toolUrl}/lti`;
      const form = await lti.DeepLinking.createDeepLinkingForm(token, [{ type: 'ltiResourceLink', title: entry.title, url: launchUrl, custom: { assignment: entry.id } }], { message: `Linked ${entry.title}` });
      return res.type('html').send(form);
    }),
  );
  lti.onInvalidToken((_req, res) => {
    const reason = String((res.locals.err as { details?: { message?: string } })?.details?.message ?? 'invalid token');
    if (reason === 'MISSING_VALIDATION_COOKIE') return problem(res, 401, 'Launch not accepted: cookie missing', missingCookie(deps.toolUrl, ltiCookies(config.lti)));
    return problem(res, 401, 'Launch not accepted', `The launch could not be verified (${reason}). Launch the assignment again from the course.`);
  });
  // a launch whose session cookie did not come back: the same cookie problem one step later
  lti.onSessionTimeout((_req, res) => problem(res, 401, 'Session not found: cookie missing', missingCookie(deps.toolUrl, ltiCookies(config.lti))));
  lti.onUnregisteredPlatform((_req, res) =>
    problem(res, 400, 'Unknown platform', 'This platform (issuer and client id) is not registered with Gofer. The course team must add its issuer and the component\'s client id to Gofer\'s configuration (lti.platforms) or with `gofer platform add`.'),
  );
  // body-parser's complaints (malformed or oversized bodies) and anything thrown synchronously
  lti.app.use((err: unknown, req: Request, res: Response, _next: (e?: unknown) => void) => {
    const status = (err as { status?: unknown })?.status;
    if (typeof status === 'number' && status >= 400 && status < 500) return problem(res, status, 'Request not readable', `Gofer could not read this request: ${(err as Error).message}.`);
    failed('request', req, res, err);
  });
  return { app: lti.app, provider: lti };
}

/** What to check when the browser did not send back the cookie ltijs set during the launch. */
export function missingCookie(toolUrl: string, c: CookieAttributes): string {
  const now = [`SameSite=${c.sameSite}`, ...(c.secure ? ['Secure'] : []), ...(c.partitioned ? ['Partitioned'] : [])].join('; ');
  return (
    'Your browser did not send back the cookie Gofer set when this launch began (MISSING_VALIDATION_COOKIE), so Gofer cannot tell the launch is yours. Check: ' +
    `(1) Gofer is reached over HTTPS (its address is ${toolUrl}, lti.url): browsers keep Secure cookies only from HTTPS or localhost; ` +
    `(2) Gofer's cookies are "SameSite=None; Secure; Partitioned", the default outside lti.development (now: ${now}; lti.cookies); ` +
    '(3) the browser accepts cookies of a site inside another site\'s page: Safari, and browsers set to block all third-party cookies, refuse even partitioned ones. ' +
    'There, set the component in Studio to open in a new window. Then launch the assignment again from the course.'
  );
}

/**
 * Choosing a component's assignment is for course staff, in a deep-linking launch: a learner's
 * (or a resource-link) token gets a page saying so, never the platform's deep-linking form.
 */
function deepLinkRefusal(token: Record<string, any> | undefined): [number, string, string] | undefined {
  const ctx = (token?.platformContext ?? {}) as Record<string, unknown>;
  if (!token) return [401, 'Launch not accepted', 'This page needs a deep-linking launch from the course. Open the component in Studio and choose its content again.'];
  if (ctx.messageType !== 'LtiDeepLinkingRequest') {
    return [400, 'Not a deep-linking launch', 'Choosing an assignment needs a deep-linking launch: in Studio, open the component\'s settings as course staff and select its content there.'];
  }
  if (!isStaff(Array.isArray(ctx.roles) ? ctx.roles.map(String) : [])) return [403, 'Course staff only', 'Only course staff may choose which notebook assignment a component is.'];
  return undefined;
}

/** Registers every platform client declared in the configuration; idempotent. */
export async function registerPlatforms(lti: LtijsProvider, platforms: PlatformConfig[], log: Logger): Promise<number> {
  let n = 0;
  for (const p of platforms) {
    for (const c of p.clients) {
      await lti.registerPlatform({
        url: p.issuer,
        name: p.name,
        clientId: c.clientId,
        authenticationEndpoint: p.authUrl,
        accesstokenEndpoint: c.tokenUrl ?? p.tokenUrl,
        authorizationServer: c.tokenUrl ?? p.tokenUrl,
        authConfig: { method: 'JWK_SET', key: c.keysetUrl ?? p.keysetUrl },
      });
      n++;
    }
  }
  if (n) log.info('LTI platforms registered', { clients: n });
  return n;
}

/** Where platforms and browsers reach Gofer: `lti.url`, else the address it listens on. */
export function ltiBaseUrl(config: Pick<Config, 'lti' | 'server'>, listen: { host: string; port: number } = config.server): string {
  return (config.lti.url ?? `http://${listen.host}:${listen.port}`).replace(/\/$/, '');
}
