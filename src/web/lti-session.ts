import { randomBytes } from 'node:crypto';
import { parse as parseCookies, serialize } from 'cookie';
import type { Request, Response } from 'express';
import type { CookieAttributes } from '../config/schema.js';
import type { Clock } from '../lib/clock.js';
import { ForbiddenError } from '../lib/errors.js';
import { safeEqual } from '../lib/safe-equal.js';
import type { LtiSession } from '../lti/launch.js';
import { sha256 } from '../submissions/identity.js';
import type { BrowserSessions } from '../submissions/browser-sessions.js';

/** The cookie that ties page sessions to the browser that launched them. */
export const LTI_COOKIE = 'gofer-lti';
/** How long the pages of a launch stay open. */
export const LTI_PAGE_SESSION_MS = 8 * 3600 * 1000;

/** A launch as the session table keeps it: who launched, and the hash of their browser's key. */
interface LaunchRow {
  session: LtiSession;
  browser: string;
}

/**
 * Page sessions after a launch. The page address names the launch (`l`, random) and the browser
 * holds a key in a cookie; only both together open the pages, so an address that leaks (a
 * screenshot, a log, a shared link) opens nothing. Each launch has its own address, so two tabs
 * on two assignments stay apart.
 */
export class LtiPageSessions {
  constructor(private readonly deps: { sessions: BrowserSessions; cookies: CookieAttributes; clock: Clock }) {}

  /** After a launch: records it for this browser (keeping the browser's key if it has one) and returns the page's path. */
  async open(req: Request, res: Response, session: LtiSession): Promise<string> {
    const key = browserKey(req) ?? randomBytes(32).toString('base64url');
    const row: LaunchRow = { session, browser: sha256(key) };
    const launch = await this.deps.sessions.create('lti', row, LTI_PAGE_SESSION_MS, this.deps.clock.now());
    const { secure, sameSite, partitioned } = this.deps.cookies;
    res.append('Set-Cookie', serialize(LTI_COOKIE, key, { path: '/', httpOnly: true, maxAge: LTI_PAGE_SESSION_MS / 1000, secure, partitioned, sameSite: sameSite.toLowerCase() as 'none' | 'lax' | 'strict' }));
    return `/app/assignment?l=${encodeURIComponent(launch)}`;
  }

  /** The launch's session, when this browser is the one that launched; else a page saying what to do. */
  async find(req: Request, launch: string): Promise<LtiSession> {
    const key = browserKey(req);
    if (!key) {
      throw new ForbiddenError(
        'Your browser did not send Gofer its session cookie. Browsers that block cookies of a site shown inside another site (such as Safari) do this for the course page\'s frame: launch the assignment again, and if this page comes back, ask the course team to set the component to open in a new window.',
      );
    }
    const row = await this.deps.sessions.get<LaunchRow>('lti', launch, this.deps.clock.now());
    if (!row || !safeEqual(sha256(key), row.browser)) throw new ForbiddenError('This page has expired or belongs to another launch. Launch the assignment again from the course.');
    return row.session;
  }
}

function browserKey(req: Request): string | undefined {
  const v = parseCookies(req.get('cookie') ?? '')[LTI_COOKIE];
  return v && /^[A-Za-z0-9_-]{43}$/.test(v) ? v : undefined;
}
