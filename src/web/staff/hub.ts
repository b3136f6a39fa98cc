import express, { type Request, type Response, type Router } from 'express';
import { findCourse } from '../../config/courses.js';
import { ForbiddenError } from '../../lib/errors.js';
import { html } from '../../lib/html.js';
import { page } from '../../lib/page.js';
import type { Identity, Signer } from '../../submissions/identity.js';
import { isInstructor } from '../../submissions/routes.js';
import { staffRouter, type StaffDeps, type StaffSession } from './routes.js';

/**
 * The staff pages under the hub, at `{prefix}staff?l=<course>`: the same pages as after an LTI
 * staff launch, for a hub user logged in to Gofer through the hub (its OAuth, the browser session
 * cookie) who is an instructor of that course (`instructors`, `instructorGroups`, or a hub
 * admin), checked at every request. `{prefix}staff` alone lists the courses they may open.
 * Forms carry a CSRF token bound to the user and the course.
 */
export function hubStaffRouter(deps: Omit<StaffDeps, 'staffOnly' | 'courseList'> & { signer: Signer; identity: (req: Request) => Promise<Identity | undefined>; prefix: string }): Router {
  const router = express.Router();
  const login = (req: Request, res: Response) => res.redirect(302, `${deps.prefix}login?next=${encodeURIComponent(`${deps.prefix}${req.originalUrl.slice(deps.prefix.length)}`)}`);
  const csrfOf = (who: Identity, course: string) => deps.signer.tag('csrf', `hub\n${who.name}\n${course}`);

  const staffOnly = async (req: Request): Promise<{ launch: string; session: StaffSession; csrf: string }> => {
    const who = await deps.identity(req);
    if (!who) throw new ForbiddenError('Log in to JupyterHub first, then open this page again.');
    const l = String(req.query.l ?? (req.body as Record<string, unknown> | undefined)?.l ?? '');
    const course = findCourse(deps.config, l);
    // a course that does not exist is answered like one the user is not staff of
    if (!course || !isInstructor(who, course.id, deps.config)) throw new ForbiddenError('Only course staff may open this page.');
    return { launch: course.id, session: { course: course.id, assignment: course.assignments[0]!.id, sub: `hub:${who.name}`, name: who.name }, csrf: csrfOf(who, course.id) };
  };

  // a browser without a hub session is sent to the hub login first, and comes back here
  router.use('/staff', async (req: Request, res: Response, next) => {
    if (req.method !== 'GET') return next();
    const who = await deps.identity(req);
    if (!who) return login(req, res);
    if (req.path !== '/' || req.query.l) return next();
    const mine = deps.config.courses.filter((c) => isInstructor(who, c.id, deps.config));
    const body = mine.length
      ? html`<ul id="staff-courses">${mine.map((c) => html`<li><a href="staff?l=${encodeURIComponent(c.id)}">${c.id}</a></li>`)}</ul>`
      : html`<p id="no-courses">You are not an instructor of any course graded here (${who.name}). Course staff are listed in Gofer's configuration (<code>instructors</code>, <code>instructorGroups</code>).</p>`;
    res.type('html').send(page('Your courses', body));
  });
  router.use(staffRouter({ ...deps, staffOnly, courseList: false }));
  return router;
}
