import express, { type Request, type Response, type Router } from 'express';
import { findAssignment, findCourse } from '../config/courses.js';
import type { Config } from '../config/schema.js';
import type { Db } from '../db/knex.js';
import { gradeRows, gradesCsv, peopleOf } from '../gradebook/export.js';
import { isStaff, type LtiSession } from '../lti/launch.js';
import type { LtiIdentity, LtiStore } from '../lti/store.js';
import type { Clock } from '../lib/clock.js';
import { afterUnreadBody } from '../lib/error-middleware.js';
import { ForbiddenError, GoferError, RateLimitError, UnprocessableError } from '../lib/errors.js';
import { safeEqual } from '../lib/safe-equal.js';
import { platformNotice } from '../passback/notice.js';
import type { PassbackOutbox } from '../passback/outbox.js';
import type { Identity, Signer } from '../submissions/identity.js';
import type { Receipt } from '../submissions/intake.js';
import { uploadedFile } from '../submissions/routes.js';
import type { SubmissionStore } from '../submissions/store.js';
import { html, type Html } from '../lib/html.js';
import { page } from '../lib/page.js';
import type { PassbackActions } from '../passback/actions.js';
import { passbackCell } from './fragments.js';
import { learnerDocument, serveLearnerScript, statusJson, submissionsSection, viewOf, assignmentFacts } from './learner-page.js';
import { learnerView, timeText, type PassbackState } from './learner-view.js';
import type { Heartbeat } from '../grading/heartbeats.js';
import type { LtiPageSessions } from './lti-session.js';
import { quietHostsHtml } from './quiet-hosts.js';
import { StaffActions } from './staff/actions-store.js';
import { CourseReport } from './staff/report.js';
import { staffRouter } from './staff/routes.js';

export type { PassbackState };

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
  /** A JupyterHub is configured: a learner's hub name is then a JupyterHub account ("Signed in to JupyterHub as …"). */
  hubConfigured: boolean;
  /** The hub service prefix (for "Connect your JupyterHub account"). */
  prefix: string;
  passback: Pick<PassbackActions, 'states' | 'resend'>;
  onLinked: (hubUser: string) => Promise<void>;
  wakeGrading: () => void;
  hubIdentity?: (req: Request) => Promise<Identity | undefined>;
  /** Stores a notebook uploaded on the assignment page, for that assignment. */
  submit: (who: Identity, notebook: Buffer, target: { course: string; assignment: string }) => Promise<Receipt>;
  /** The grading hosts that went quiet (quiet-hosts.ts), shown on the staff page. */
  quietHosts?: (now: number) => Promise<Heartbeat[]>;
}

const CHOOSE_FILE = 'No file was chosen: choose your notebook file (.ipynb), then press Submit.';

const tooLarge = (mb: number): string => `That file is larger than ${mb} MB, the most Gofer accepts: submit the notebook without large outputs (clear them in Jupyter, save, and upload again).`;

const UPLOAD_NOTICES: Record<string, string> = {
  accepted: 'Your notebook was received. It is being graded: this page shows the result when it is ready.',
  duplicate: 'This notebook was already received a moment ago: it is graded once, and its result is below.',
};

const ERROR_TITLES: Record<number, string> = {
  403: 'Not possible',
  413: 'File too large',
  422: 'Not accepted',
  429: 'Too many submissions',
};

function wantsJson(req: Request): boolean {
  return (req.get('accept') ?? '').includes('application/json');
}

function formatPoints(points: number): string {
  return `${points} ${points === 1 ? 'point' : 'points'}`;
}

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
    const configured = findCourse(deps.config, launched.course) !== undefined;
    const staff = launched.staff && configured && isStaff(identity?.roles ?? []);
    return { launch, session: { ...launched, staff }, identity };
  };
  const staffOnly = async (req: Request): Promise<{ launch: string; session: LtiSession; csrf: string }> => {
    const found = await session(req);
    if (!found.session.staff) throw new ForbiddenError('Only course staff may open this page.');
    return { ...found, csrf: deps.signer.tag('csrf', found.launch) };
  };
  const checkCsrf = (req: Request, launch: string): void => {
    const given = (req.body as Record<string, unknown> | undefined)?.csrf ?? req.query.csrf;
    if (typeof given !== 'string' || !safeEqual(given, deps.signer.tag('csrf', launch))) throw new ForbiddenError('This form has expired or did not come from Gofer. Reload the page and try again.');
  };

  router.use(staffRouter({ ...deps, resend: (id) => deps.passback.resend(id), report: new CourseReport(deps.db), actions: new StaffActions(deps.db), staffOnly, courseList: true }));

  /** The learner's submissions of the launched assignment, as they see them (empty before their hub account is known). */
  const assignmentView = async (ses: LtiSession, identity: LtiIdentity | undefined) => {
    const binding = await deps.store.binding(ses.bindingId);
    const owner = identity?.hubUser;
    if (!owner) return { binding, view: learnerView([], assignmentFacts(deps.config), null, { now: now(), showAssignment: false }) };
    const platformOf = async (ids: string[]) => ({ weight: binding?.scoreMaximum ?? null, endAt: binding?.endAt ?? null, states: await deps.passback.states(ids) });
    return { binding, view: await viewOf(deps.submissions, deps.config, { owner, course: ses.course, assignment: ses.assignment }, platformOf, now(), Number.MAX_SAFE_INTEGER) };
  };

  serveLearnerScript(router);

  router.get('/assignment', async (req: Request, res: Response) => {
    const { launch, session: ses, identity } = await session(req);
    const found = findAssignment(deps.config, ses.course, ses.assignment);
    const assignment = found?.assignment;
    const zone = found?.course.timeZone;
    const { binding, view } = await assignmentView(ses, identity);
    const notice = binding ? platformNotice(binding, now()) : null;
    const closed = assignment?.due && assignment.late === 'reject' && now() > assignment.due.getTime() ? assignment.due : undefined;
    const hubUser = identity?.hubUser;
    const hubLink = deps.config.lti.hubLink
      ? onHub(deps.config.lti.hubLink.replaceAll('{assignment}', encodeURIComponent(ses.assignment)).replaceAll('{course}', encodeURIComponent(ses.course)))
      : undefined;
    const name = ses.name ?? identity?.name ?? null;
    // a hub name is a JupyterHub account only when there is a hub; otherwise it is Gofer's name for the launch
    const who =
      hubUser && deps.hubConfigured
        ? html`<p id="identity">Signed in to JupyterHub as <b id="hub-user">${hubUser}</b>.</p>`
        : name
          ? html`<p id="identity">Signed in from the course as <b id="learner-name">${name}</b>.</p>`
          : html`<p id="identity">Signed in from the course (it does not share your name with Gofer).</p>`;
    const flash = typeof req.query.notice === 'string' && Object.hasOwn(UPLOAD_NOTICES, req.query.notice) ? UPLOAD_NOTICES[req.query.notice] : undefined;
    const points = assignment?.points ?? 1;
    let learner: Html;
    if (!hubUser) {
      const t = deps.signer.sign('hub-link', { issuer: ses.issuer, sub: ses.sub }, 3600_000, now());
      const next = `${deps.prefix}link?t=${encodeURIComponent(t)}`;
      learner = html`<p>Gofer does not know your JupyterHub account yet, so it cannot show your submissions or send their grades.
<a id="connect-hub" href="${onHub(`${deps.prefix}login?next=${encodeURIComponent(next)}`)}" target="_blank" rel="noopener">Connect your JupyterHub account</a>.</p>`;
    } else {
      const action = `submit?l=${encodeURIComponent(launch)}&csrf=${encodeURIComponent(deps.signer.tag('csrf', launch))}`;
      const maxBytes = deps.config.server.maxNotebookMb * 1024 * 1024;
      learner = html`<p id="edx-total">${view.edxTotal}</p>
${closed
  ? false
  : html`<form id="upload" method="post" enctype="multipart/form-data" action="${action}" data-max-bytes="${maxBytes}" data-choose-file="${CHOOSE_FILE}" data-too-large="${tooLarge(deps.config.server.maxNotebookMb)}">
<label>Submit a notebook file: <input type="file" name="file" accept=".ipynb"></label> <button type="submit">Submit</button></form>`}
${submissionsSection(view)}`;
    }
    const body = html`${who}
<p>Course <b>${ses.course}</b>, assignment <b>${ses.assignment}</b>, worth ${formatPoints(points)}${assignment?.due ? html`, due ${timeText(assignment.due.getTime(), zone)}` : false}.</p>
${notice ? html`<p id="edx-notice">${notice.sentence}</p>` : false}
${closed ? html`<p id="closed">Submissions closed on ${timeText(closed.getTime(), zone)}: late work is not accepted for this assignment.</p>` : false}
<div id="notice" class="notice${flash ? ` notice-${String(req.query.notice)}` : ''}" role="status"${flash ? false : html` hidden`}>${flash ?? ''}</div>
${hubLink ? html`<p><a id="open-hub" href="${hubLink}" target="_blank" rel="noopener">Open in JupyterHub</a></p>` : false}
${ses.staff ? html`<p><a id="staff-overview" href="staff?l=${encodeURIComponent(launch)}">Course overview (staff)</a> · <a id="course-page" href="course?l=${encodeURIComponent(launch)}">Course grades (staff)</a></p>` : false}
${learner}`;
    res.type('html').send(learnerDocument(ses.assignment, body, hubUser ? { statusUrl: `status?l=${encodeURIComponent(launch)}`, done: view.done } : {}));
  });

  // the assignment page's status endpoint: the same launch, the same learner, the same view
  router.get('/status', async (req: Request, res: Response) => {
    const { session: ses, identity } = await session(req);
    const { view } = await assignmentView(ses, identity);
    res.set('Cache-Control', 'no-store').json(statusJson(view, now()));
  });

  router.post('/submit', async (req: Request, res: Response) => {
    const { launch, session: ses, identity } = await session(req);
    checkCsrf(req, launch);
    if (!identity?.hubUser) throw new ForbiddenError('Connect your JupyterHub account first.');
    const file = await uploadedFile(req, deps.config.server.maxNotebookMb * 1024 * 1024);
    if (file.length === 0) throw new UnprocessableError(CHOOSE_FILE);
    const receipt = await deps.submit({ name: identity.hubUser, via: 'lti', admin: false, groups: [] }, file, { course: ses.course, assignment: ses.assignment });
    const kind = receipt.duplicate ? 'duplicate' : 'accepted';
    if (wantsJson(req)) res.status(202).json({ id: receipt.id, duplicate: receipt.duplicate, notice: UPLOAD_NOTICES[kind] });
    else res.redirect(303, `assignment?l=${encodeURIComponent(launch)}&notice=${kind}`);
  });

  router.get('/course', async (req: Request, res: Response) => {
    const { launch, session: ses } = await staffOnly(req);
    const rows = await gradeRows(deps.submissions, deps.config, { course: ses.course });
    const states = await deps.passback.states(rows.map((r) => r.submission));
    const csrf = deps.signer.tag('csrf', launch);
    // each row's buttons are named after their learner and assignment, for screen readers
    const action = (path: string, label: string, r: { submission: string; learner: string; assignment: string }) =>
      html`<form method="post" action="${path}" class="inline"><input type="hidden" name="l" value="${launch}"><input type="hidden" name="csrf" value="${csrf}"><input type="hidden" name="submission" value="${r.submission}"><button type="submit" aria-label="${`${label}: ${r.learner}, ${r.assignment}`}">${label}</button></form>`;
    const body = rows.map(
      (r) => html`<tr class="grade"><td>${r.learner}</td><td>${r.assignment}</td><td>${r.status}</td><td class="grade">${r.gradeText}</td>
<td>${passbackCell(states.get(r.submission))}</td><td>${action('regrade', 'Regrade', r)} ${action('resend', 'Resend score', r)}</td></tr>`,
    );
    const course = findCourse(deps.config, ses.course);
    const notices: Html[] = [];
    for (const a of course?.assignments ?? []) {
      for (const b of await deps.store.bindingsFor(ses.course, a.id)) {
        const n = platformNotice(b, now());
        if (n) notices.push(html`<li>Assignment <b>${a.id}</b>, component <code>${b.resourceLinkId}</code> (${b.contextId}): ${n.sentence}</li>`);
      }
    }
    const quiet = quietHostsHtml((await deps.quietHosts?.(now())) ?? [], now());
    const content = html`${quiet}${notices.length ? html`<ul id="edx-notices">${notices}</ul>` : ''}<p><a id="csv" href="course.csv?l=${encodeURIComponent(launch)}">Download CSV</a></p>
<p><small>edX does not publish a score of 0 to its gradebook (a known edX bug): Gofer sends it, and edX keeps it without showing it.</small></p>
<table><thead><tr><th>Learner</th><th>Assignment</th><th>Status</th><th>Grade</th><th>edX</th><th></th></tr></thead><tbody>${body}</tbody></table>`;
    res.type('html').send(page(`Grades: ${ses.course}`, content));
  });

  router.get('/course.csv', async (req: Request, res: Response) => {
    const { session: ses } = await staffOnly(req);
    res.type('text/csv').attachment(`gofer-${ses.course}.csv`).send(gradesCsv(await gradeRows(deps.submissions, deps.config, { course: ses.course }), peopleOf(await deps.store.identities())));
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
    await deps.passback.resend(sub.id);
    res.redirect(303, `course?l=${encodeURIComponent(launch)}`);
  });
  // These are pages in a browser (often in edX's iframe): what cannot be done is a page too.
  // A refused upload's body is not read (as the error middleware answers).
  router.use((err: unknown, req: Request, res: Response, next: (e?: unknown) => void) => {
    if (!(err instanceof GoferError) || err.status >= 500 || res.headersSent) return next(err);
    if (err instanceof RateLimitError) res.set('Retry-After', String(err.retryAfterSeconds));
    afterUnreadBody(req, res, () => {
      if (wantsJson(req)) {
        res.status(err.status).json({ error: err.message });
        return;
      }
      const launch = String(req.query.l ?? '');
      const back = launch ? html`<p><a id="back" href="assignment?l=${encodeURIComponent(launch)}">Back to the assignment</a></p>` : false;
      res.status(err.status).type('html').send(learnerDocument(ERROR_TITLES[err.status] ?? 'Not accepted', html`<p id="problem">${err.message}</p>${back}`));
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
    const t = deps.signer.check<{ issuer: string; sub: string }>('hub-link', String(value ?? ''), deps.clock.now());
    if (t.ok) return t.value;
    const again = 'Launch the assignment again from the course and use "Connect your JupyterHub account".';
    throw new ForbiddenError(t.why === 'expired' ? `This link has expired. ${again}` : `This is not a working Gofer link (it may have been cut short when it was copied). ${again}`);
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
        html`<p>Connect the course account <b>${account}</b>${course?.email ? html` (${course.email})` : ''} to the JupyterHub account <b>${who.name}</b>?
Your grades from JupyterHub will then be sent to that course. Only do this if you opened this page yourself from your course.</p>
<form method="post" action="link"><input type="hidden" name="t" value="${String(req.query.t)}"><input type="hidden" name="_xsrf" value="${(await deps.xsrfToken?.(req)) ?? ''}">
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
    res.type('html').send(page('Connected', html`<p id="linked">Your course account is now connected to the JupyterHub account <b>${who.name}</b>. You can close this window and reload the assignment page.</p>`));
  });
  return router;
}
