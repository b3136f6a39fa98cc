import express, { type Request, type Response, type Router } from 'express';
import type { Config } from '../config/schema.js';
import type { Db } from '../db/knex.js';
import { gradeRows, gradesCsv } from '../gradebook/export.js';
import { isStaff, type LtiSession } from '../lti/launch.js';
import type { LtiIdentity, LtiStore } from '../lti/store.js';
import type { Clock } from '../lib/clock.js';
import { afterUnreadBody } from '../lib/error-middleware.js';
import { ForbiddenError, GoferError, RateLimitError } from '../lib/errors.js';
import { safeEqual } from '../lib/safe-equal.js';
import { platformNotice } from '../passback/notice.js';
import type { PassbackOutbox } from '../passback/outbox.js';
import type { Identity, Signer } from '../submissions/identity.js';
import type { Receipt } from '../submissions/intake.js';
import { uploadedFile } from '../submissions/routes.js';
import type { SubmissionStore } from '../submissions/store.js';
import { esc, page } from './html.js';
import type { LtiPageSessions } from './lti-session.js';
import { StaffActions } from './staff/actions-store.js';
import { CourseReport } from './staff/report.js';
import { staffRouter } from './staff/routes.js';

/** How a submission's grade stands with the platform, for the pages. */
export interface PassbackState {
  status: string;
  detail: string | null;
}

export interface LtiPagesDeps {
  config: Config;
  store: LtiStore;
  submissions: SubmissionStore;
  /** The database, for the staff pages' course report and audit log. */
  db: Db;
  outbox: PassbackOutbox;
  /** Wakes this process's passback dispatcher. */
  notifyPassback: () => void;
  signer: Signer;
  pageSessions: LtiPageSessions;
  clock: Clock;
  /** The hub service prefix (for "Connect your JupyterHub account"). */
  prefix: string;
  passbackStates: (submissionIds: string[]) => Promise<Map<string, PassbackState>>;
  resend: (submissionId: string) => Promise<boolean>;
  onLinked: (hubUser: string) => Promise<void>;
  wakeGrading: () => void;
  hubIdentity?: (req: Request) => Promise<Identity | undefined>;
  /** Stores a notebook uploaded on the assignment page, for that assignment. */
  submit: (who: Identity, notebook: Buffer, target: { course: string; assignment: string }) => Promise<Receipt>;
}

const PASSBACK_WORDS: Record<string, string> = {
  sent: 'sent to edX',
  pending: 'being sent to edX',
  waiting: 'waiting: launch the assignment from the course (and connect your JupyterHub account) so Gofer can send it',
  superseded: 'not sent: a newer score is already in edX',
  late: 'not sent: submitted after the deadline',
  failed: 'edX refused it; course staff can see why',
};

/**
 * Pages reached after an LTI launch: the learner's assignment page, the instructor's course
 * table with CSV download, regrade and resend (CSRF-protected), and linking a launch identity to
 * a hub account. The address names the launch (`l`), the browser's cookie proves it launched
 * (LtiPageSessions); POSTs also carry a CSRF token derived from the launch. Staff rights are
 * checked at every request: the launch's staff role counts only while the latest launch Gofer
 * has seen from that person still carries one and the course is still configured.
 */
export function ltiPagesRouter(deps: LtiPagesDeps): Router {
  const router = express.Router();
  const form = express.urlencoded({ extended: false, limit: '16kb' });
  const now = () => deps.clock.now();
  // These pages are on Gofer's own address (the LTI tool URL), which the hub's proxy does not
  // serve: paths meant for the hub (its OAuth login through {prefix}, its pages) go to hub.publicUrl.
  const onHub = (pathOrUrl: string): string => (deps.config.hub.publicUrl ? new URL(pathOrUrl, deps.config.hub.publicUrl).href : pathOrUrl);

  const session = async (req: Request): Promise<{ launch: string; session: LtiSession; identity: LtiIdentity | undefined }> => {
    const launch = String(req.query.l ?? (req.body as Record<string, unknown> | undefined)?.l ?? '');
    const launched = await deps.pageSessions.find(req, launch);
    const identity = await deps.store.identity(launched.issuer, launched.sub);
    const configured = deps.config.courses.some((c) => c.id === launched.course);
    const staff = launched.staff && configured && isStaff(identity?.roles ?? []);
    return { launch, session: { ...launched, staff }, identity };
  };
  const staffOnly = async (req: Request): Promise<{ launch: string; session: LtiSession }> => {
    const found = await session(req);
    if (!found.session.staff) throw new ForbiddenError('Only course staff may open this page.');
    return found;
  };
  const checkCsrf = (req: Request, launch: string): void => {
    const given = (req.body as Record<string, unknown> | undefined)?.csrf ?? req.query.csrf;
    if (typeof given !== 'string' || !safeEqual(given, deps.signer.tag('csrf', launch))) throw new ForbiddenError('This form has expired or did not come from Gofer. Reload the page and try again.');
  };

  router.use(staffRouter({ ...deps, report: new CourseReport(deps.db), actions: new StaffActions(deps.db), staffOnly, checkCsrf, csrfFor: (launch) => deps.signer.tag('csrf', launch) }));

  router.get('/assignment', async (req: Request, res: Response) => {
    const { launch, session: ses, identity } = await session(req);
    const assignment = deps.config.courses.find((c) => c.id === ses.course)?.assignments.find((a) => a.id === ses.assignment);
    const hubLink = onHub(deps.config.lti.hubLink.replaceAll('{assignment}', encodeURIComponent(ses.assignment)).replaceAll('{course}', encodeURIComponent(ses.course)));
    const parts = [`<p>Course <b>${esc(ses.course)}</b>, assignment <b>${esc(ses.assignment)}</b>${assignment?.due ? `, due ${esc(assignment.due.toISOString())}` : ''}.</p>`];
    const binding = await deps.store.binding(ses.bindingId);
    const notice = binding ? platformNotice(binding, now()) : null;
    if (notice) parts.push(`<p id="edx-notice">${esc(notice.sentence)}</p>`);
    const closed = assignment?.due && assignment.late === 'reject' && now() > assignment.due.getTime() ? assignment.due : undefined;
    if (closed) parts.push(`<p id="closed">Submissions closed on ${esc(closed.toISOString())}: late work is not accepted for this assignment.</p>`);
    parts.push(`<p><a id="open-hub" href="${esc(hubLink)}" target="_blank" rel="noopener">Open in JupyterHub</a></p>`);
    if (ses.staff) parts.push(`<p><a id="staff-overview" href="staff?l=${encodeURIComponent(launch)}">Course overview (staff)</a> · <a id="course-page" href="course?l=${encodeURIComponent(launch)}">Course grades (staff)</a></p>`);
    const hubUser = identity?.hubUser;
    if (!hubUser) {
      const t = deps.signer.sign('hub-link', { issuer: ses.issuer, sub: ses.sub }, 3600_000, now());
      const next = `${deps.prefix}link?t=${encodeURIComponent(t)}`;
      parts.push(`<p>Gofer does not know your JupyterHub account yet, so it cannot show your submissions or send their grades.
<a id="connect-hub" href="${esc(onHub(`${deps.prefix}login?next=${encodeURIComponent(next)}`))}" target="_blank" rel="noopener">Connect your JupyterHub account</a>.</p>`);
    } else {
      const subs = (await deps.submissions.list({ owner: hubUser, course: ses.course, assignment: ses.assignment })).reverse();
      const states = await deps.passbackStates(subs.map((x) => x.id));
      const rows = await Promise.all(
        subs.map(async (x) => {
          const tests = (await deps.submissions.tests(x.id)).filter((t) => !t.hidden);
          const feedback = tests.map((t) => `<li>${esc(t.name)}: ${t.passed ? 'passed' : 'failed'}${t.message ? `<pre>${esc(t.message)}</pre>` : ''}</li>`).join('');
          const st = states.get(x.id);
          const words = st?.status === 'sent' && notice ? (notice.certain ? 'sent to edX, which will not record it (see above)' : 'sent to edX, which may not record it (see above)') : st ? (PASSBACK_WORDS[st.status] ?? st.status) : '';
          return `<tr class="submission"><td>${esc(new Date(x.receivedAt).toISOString())}</td><td class="status-${esc(x.status)}">${esc(x.status)}</td>
<td class="score">${x.status === 'graded' ? `${esc(x.points)}/${esc(x.maxPoints)}` : ''}</td><td class="passback">${esc(words)}</td>
<td>${esc(x.message ?? '')}<ul>${feedback}</ul></td></tr>`;
        }),
      );
      parts.push(`<p>Signed in to JupyterHub as <b id="hub-user">${esc(hubUser)}</b>.</p>`);
      const action = `submit?l=${encodeURIComponent(launch)}&csrf=${encodeURIComponent(deps.signer.tag('csrf', launch))}`;
      if (!closed) {
        parts.push(`<form id="upload" method="post" enctype="multipart/form-data" action="${esc(action)}">
<label>Or submit a notebook file here: <input type="file" name="file" accept=".ipynb"></label> <button type="submit">Submit</button></form>`);
      }
      parts.push(
        subs.length
          ? `<table><thead><tr><th>Received</th><th>Status</th><th>Score</th><th>edX</th><th>Feedback</th></tr></thead><tbody>${rows.join('')}</tbody></table>`
          : '<p id="no-submissions">No submissions yet: open the notebook in JupyterHub and press Submit.</p>',
      );
    }
    res.type('html').send(page(`${ses.assignment}`, parts.join('\n')));
  });

  router.post('/submit', async (req: Request, res: Response) => {
    const { launch, session: ses, identity } = await session(req);
    checkCsrf(req, launch);
    if (!identity?.hubUser) throw new ForbiddenError('Connect your JupyterHub account first.');
    const file = await uploadedFile(req, deps.config.server.maxNotebookMb * 1024 * 1024);
    await deps.submit({ name: identity.hubUser, via: 'lti', admin: false, groups: [] }, file, { course: ses.course, assignment: ses.assignment });
    res.redirect(303, `assignment?l=${encodeURIComponent(launch)}`);
  });

  router.get('/course', async (req: Request, res: Response) => {
    const { launch, session: ses } = await staffOnly(req);
    const rows = await gradeRows(deps.submissions, deps.config, { course: ses.course });
    const states = await deps.passbackStates(rows.map((r) => r.submission));
    const csrf = deps.signer.tag('csrf', launch);
    const action = (path: string, label: string, submission: string) =>
      `<form method="post" action="${path}" class="inline"><input type="hidden" name="l" value="${esc(launch)}"><input type="hidden" name="csrf" value="${esc(csrf)}"><input type="hidden" name="submission" value="${esc(submission)}"><button type="submit">${label}</button></form>`;
    const body = rows
      .map((r) => {
        const st = states.get(r.submission);
        return `<tr class="grade"><td>${esc(r.learner)}</td><td>${esc(r.assignment)}</td><td>${esc(r.status)}</td><td>${r.score === null ? '' : esc(r.score)}</td>
<td>${esc(st?.status ?? '')}${st?.detail ? `<br><small>${esc(st.detail)}</small>` : ''}</td><td>${action('regrade', 'Regrade', r.submission)} ${action('resend', 'Resend score', r.submission)}</td></tr>`;
      })
      .join('');
    const course = deps.config.courses.find((c) => c.id === ses.course);
    const notices = [];
    for (const a of course?.assignments ?? []) {
      for (const b of await deps.store.bindingsFor(ses.course, a.id)) {
        const n = platformNotice(b, now());
        if (n) notices.push(`<li>Assignment <b>${esc(a.id)}</b>, component <code>${esc(b.resourceLinkId)}</code> (${esc(b.contextId)}): ${esc(n.sentence)}</li>`);
      }
    }
    const html = `${notices.length ? `<ul id="edx-notices">${notices.join('')}</ul>` : ''}<p><a id="csv" href="course.csv?l=${encodeURIComponent(launch)}">Download CSV</a></p>
<p><small>edX does not publish a score of 0 to its gradebook (a known edX bug): Gofer sends it, and edX keeps it without showing it.</small></p>
<table><thead><tr><th>Learner</th><th>Assignment</th><th>Status</th><th>Score</th><th>edX</th><th></th></tr></thead><tbody>${body}</tbody></table>`;
    res.type('html').send(page(`Grades: ${ses.course}`, html));
  });

  router.get('/course.csv', async (req: Request, res: Response) => {
    const { session: ses } = await staffOnly(req);
    res.type('text/csv').attachment(`gofer-${ses.course}.csv`).send(gradesCsv(await gradeRows(deps.submissions, deps.config, { course: ses.course })));
  });

  const own = async (ses: LtiSession, submission: string) => {
    const sub = await deps.submissions.get(submission);
    if (!sub || sub.course !== ses.course) throw new ForbiddenError('That submission is not in your course.');
    return sub;
  };
  router.post('/regrade', form, async (req: Request, res: Response) => {
    const { launch, session: ses } = await staffOnly(req);
    checkCsrf(req, launch);
    const sub = await own(ses, String(req.body.submission ?? ''));
    await deps.submissions.regrade(sub.id, now(), deps.config.queue.maxAttempts);
    deps.wakeGrading();
    res.redirect(303, `course?l=${encodeURIComponent(launch)}`);
  });
  router.post('/resend', form, async (req: Request, res: Response) => {
    const { launch, session: ses } = await staffOnly(req);
    checkCsrf(req, launch);
    const sub = await own(ses, String(req.body.submission ?? ''));
    await deps.resend(sub.id);
    res.redirect(303, `course?l=${encodeURIComponent(launch)}`);
  });
  // These are pages in a browser (often in edX's iframe): what cannot be done is a page too.
  // A refused upload's body is not read (as the error middleware answers).
  router.use((err: unknown, req: Request, res: Response, next: (e?: unknown) => void) => {
    if (!(err instanceof GoferError) || err.status >= 500 || res.headersSent) return next(err);
    if (err instanceof RateLimitError) res.set('Retry-After', String(err.retryAfterSeconds));
    afterUnreadBody(req, res, () => {
      res.status(err.status).type('html').send(page(err.status === 403 ? 'Not possible' : 'Not accepted', `<p>${esc(err.message)}</p>`));
    });
  });
  return router;
}

/**
 * `{prefix}link?t=…`: after hub login, ties the launch identity in `t` to the hub account. The GET
 * only asks; the POST (with the hub session's XSRF token) links, so a link posted somewhere by
 * someone else cannot tie their course account to a visitor's hub account.
 */
export function linkRouter(
  deps: Pick<LtiPagesDeps, 'signer' | 'store' | 'clock' | 'onLinked' | 'hubIdentity' | 'prefix'> & { xsrfToken?: (req: Request) => Promise<string | undefined>; checkXsrf?: (req: Request) => boolean },
): Router {
  const router = express.Router();
  const form = express.urlencoded({ extended: false, limit: '16kb' });
  const linkToken = (value: unknown) => {
    const t = deps.signer.verify<{ issuer: string; sub: string }>('hub-link', String(value ?? ''), deps.clock.now());
    if (!t) throw new ForbiddenError('This link has expired. Launch the assignment again from the course and use "Connect your JupyterHub account".');
    return t;
  };
  router.get('/link', async (req: Request, res: Response) => {
    const who = await deps.hubIdentity?.(req);
    if (!who) {
      res.redirect(302, `${deps.prefix}login?next=${encodeURIComponent(req.originalUrl)}`);
      return;
    }
    const t = linkToken(req.query.t);
    const course = await deps.store.identity(t.issuer, t.sub);
    const account = course?.name ?? course?.email ?? 'your course account';
    res.type('html').send(
      page(
        'Connect your accounts',
        `<p>Connect the course account <b>${esc(account)}</b>${course?.email ? ` (${esc(course.email)})` : ''} to the JupyterHub account <b>${esc(who.name)}</b>?
Your grades from JupyterHub will then be sent to that course. Only do this if you opened this page yourself from your course.</p>
<form method="post" action="link"><input type="hidden" name="t" value="${esc(String(req.query.t))}"><input type="hidden" name="_xsrf" value="${esc((await deps.xsrfToken?.(req)) ?? '')}">
<button id="confirm-link" type="submit">Connect</button></form>`,
      ),
    );
  });
  router.post('/link', form, async (req: Request, res: Response) => {
    const who = await deps.hubIdentity?.(req);
    if (!who) throw new ForbiddenError('Log in to JupyterHub first, then use the link again.');
    if (!deps.checkXsrf?.(req)) throw new ForbiddenError('This form has expired or did not come from Gofer. Use the link from your assignment page again.');
    const t = linkToken((req.body as Record<string, unknown>).t);
    await deps.store.linkHubUser(t.issuer, t.sub, who.name);
    await deps.onLinked(who.name);
    res.type('html').send(page('Connected', `<p id="linked">Your course account is now connected to the JupyterHub account <b>${esc(who.name)}</b>. You can close this window and reload the assignment page.</p>`));
  });
  return router;
}
