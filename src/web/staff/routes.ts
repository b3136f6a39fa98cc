import { assignmentOf, findCourse } from '../../config/courses.js';
import express, { type Request, type Response, type Router } from 'express';
import { zoneOf, type Config } from '../../config/schema.js';
import type { Clock } from '../../lib/clock.js';
import { InputError, ForbiddenError } from '../../lib/errors.js';
import { safeEqual } from '../../lib/safe-equal.js';
import { html, type Html } from '../../lib/html.js';
import { formatGrade, gradeOf } from '../../grading/scale.js';
import type { LtiSession } from '../../lti/launch.js';
import type { SubmissionStore } from '../../submissions/store.js';
import { page } from '../../lib/page.js';
import { timeHtml } from '../../lib/time-zone.js';
import { barChart, overTime, passRates, scoreHistogram } from './charts.js';
import type { PassbackOutbox } from '../../passback/outbox.js';
import { StaffActions, type StaffAction } from './actions-store.js';
import { CourseReport, SORTS, type GradeFilter, type Sort } from './report.js';

export interface StaffDeps {
  config: Config;
  report: CourseReport;
  submissions: SubmissionStore;
  clock: Clock;
  /**
   * Who asks, checked at every request: the page's context (`l`: an LTI launch, or the course
   * under the hub), the course and the staff member, and the CSRF token of that context's forms.
   * Throws a ForbiddenError for anyone not staff of the course.
   */
  staffOnly: (req: Request) => Promise<{ launch: string; session: StaffSession; csrf: string }>;
  /** Links the older course page (the simple grades list and CSV; LTI only). */
  courseList: boolean;
  actions: StaffActions;
  outbox: PassbackOutbox;
  /** Wakes this process's passback dispatcher (a grade was queued). */
  notifyPassback: () => void;
  wakeGrading: () => void;
  resend: (submissionId: string) => Promise<boolean>;
}

/** What the staff pages know of who asks: the course, the assignment to show first, and the staff member for the audit log. */
export type StaffSession = Pick<LtiSession, 'course' | 'assignment' | 'sub' | 'name'>;

export const PAGE_SIZE = 50;

const ACTION_WORDS: Record<string, string> = { regrade: 'regraded', regrade_all: 'regraded the assignment', resend: 'resent the score', override: 'set the grade', excuse: 'excused', clear_override: 'cleared the grade set by staff' };

/** The audit log as a table. */
function actionsTable(list: StaffAction[], zone: string): Html {
  if (!list.length) return html`<p id="no-actions">No staff actions yet.</p>`;
  return html`<table id="actions"><thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">What</th><th scope="col">Learner</th><th scope="col">Assignment</th><th scope="col">Why</th></tr></thead>
<tbody>${list.map((a) => html`<tr class="action action-${a.kind}"><td>${timeHtml(a.createdAt, zone)}</td><td class="actor">${a.actorName ?? a.actorSub}</td><td class="what">${ACTION_WORDS[a.kind] ?? a.kind}${a.kind === 'regrade_all' ? html` (${a.count} ${a.count === 1 ? 'submission' : 'submissions'})` : ''}</td>
<td>${a.owner ?? ''}</td><td>${a.assignment ?? ''}</td><td class="reason">${a.reason ?? ''}</td></tr>`)}</tbody></table>`;
}


function courseOf(config: Config, ses: StaffSession) {
  const course = findCourse(config, ses.course);
  if (!course) throw new ForbiddenError('This course is no longer configured in Gofer.');
  return course;
}

const STATUS_FILTERS = ['graded', 'failed', 'waiting'] as const;
const PASSBACK_FILTERS = ['sent', 'waiting', 'refused', 'late', 'superseded', 'none'] as const;

/** Reads the grades table's filter, sort and page from the query; a value it does not know is refused by name. */
function readGradeQuery(q: Request['query'], assignments: string[]): { filter: GradeFilter; sort: Sort; desc: boolean; page: number } {
  const one = (name: string): string | undefined => {
    const v = q[name];
    if (v === undefined || v === '') return undefined;
    if (typeof v !== 'string') throw new InputError(`Give "${name}" once.`);
    return v;
  };
  const pick = <T extends string>(name: string, allowed: readonly T[]): T | undefined => {
    const v = one(name);
    if (v !== undefined && !allowed.includes(v as T)) throw new InputError(`"${name}" must be one of ${allowed.join(', ')}; got "${v.slice(0, 40)}".`);
    return v as T | undefined;
  };
  const filter: GradeFilter = {};
  const assignment = pick('assignment', assignments);
  if (assignment) filter.assignment = assignment;
  const status = pick('status', STATUS_FILTERS);
  if (status) filter.status = status;
  const passback = pick('passback', PASSBACK_FILTERS);
  if (passback) filter.passback = passback;
  const late = pick('late', ['yes', 'no'] as const);
  if (late) filter.late = late === 'yes';
  const learner = one('learner');
  if (learner) filter.learner = learner.slice(0, 200);
  const sort = pick('sort', Object.keys(SORTS) as Sort[]) ?? 'learner';
  const desc = pick('dir', ['asc', 'desc'] as const) === 'desc';
  const p = one('page') ?? '1';
  if (!/^[1-9][0-9]{0,6}$/.test(p)) throw new InputError(`"page" must be a page number (1, 2, …); got "${p.slice(0, 40)}".`);
  return { filter, sort, desc, page: Number(p) };
}

/** The staff pages under /app/staff: course overview with charts and the grades table. */
export function staffRouter(deps: StaffDeps): Router {
  const router = express.Router();

  router.get('/staff', async (req: Request, res: Response) => {
    const { launch, session: ses } = await deps.staffOnly(req);
    const course = courseOf(deps.config, ses);
    const zone = zoneOf(course);
    const when = (ms: number | null) => timeHtml(ms, zone);
    const ids = course.assignments.map((a) => a.id);
    const query = readGradeQuery(req.query, ids);
    const counts = await deps.report.counts(course);
    const focus = assignmentOf(course, query.filter.assignment ?? ses.assignment, { aliases: false }) ?? course.assignments[0]!;
    const bins = await deps.report.scoreBins(course, focus.id);
    const tests = await deps.report.testPassRates(course, focus.id);
    const arrivals = await deps.report.arrivals(course, focus.id);
    const time = overTime(arrivals.counts, arrivals.bucket, focus.due, zone);
    const hist = scoreHistogram([]).map((b, i) => ({ ...b, value: bins[i] ?? 0 }));
    const { total, rows } = await deps.report.grades(course, query.filter, query.sort, query.desc, PAGE_SIZE, (query.page - 1) * PAGE_SIZE);
    const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
    const recent = await deps.actions.list(course.id, { limit: 20 });
    const points = new Map(course.assignments.map((a) => [a.id, a.points]));
    const l = launch;
    const link = (over: Record<string, string | undefined>): string => {
      const params = new URLSearchParams({ l });
      const cur: Record<string, string | undefined> = {
        assignment: query.filter.assignment,
        status: query.filter.status,
        passback: query.filter.passback,
        late: query.filter.late === undefined ? undefined : query.filter.late ? 'yes' : 'no',
        learner: query.filter.learner,
        sort: query.sort,
        dir: query.desc ? 'desc' : 'asc',
        page: String(query.page),
        ...over,
      };
      for (const [k, v] of Object.entries(cur)) if (v) params.set(k, v);
      return `staff?${params.toString()}`;
    };
    const sortHead = (key: Sort, label: string): Html => {
      const active = query.sort === key;
      const dir = active && !query.desc ? 'desc' : 'asc';
      return html`<th scope="col" aria-sort="${active ? (query.desc ? 'descending' : 'ascending') : 'none'}"><a class="sort" data-sort="${key}" href="${link({ sort: key, dir, page: '1' })}">${label}${active ? (query.desc ? ' ▼' : ' ▲') : ''}</a></th>`;
    };
    const option = (value: string, label: string, current: string | undefined): Html => html`<option value="${value}" ${value === (current ?? '') ? html`selected` : ''}>${label}</option>`;
    const pbWords: Record<string, string> = { sent: 'sent', pending: 'waiting', sending: 'waiting', waiting: 'waiting (no launch yet)', failed: 'refused', late: 'not sent: late', superseded: 'superseded' };

    const body = html`
${deps.courseList ? html`<nav><a href="course?l=${encodeURIComponent(l)}">Simple grades list and CSV</a></nav>` : ''}
<h2>Assignments</h2>
<table id="overview"><thead><tr><th scope="col">Assignment</th><th scope="col">Learners</th><th scope="col">Submitted</th><th scope="col">Graded</th><th scope="col">Failed</th><th scope="col">Waiting</th>
<th scope="col">edX: sent</th><th scope="col">edX: waiting</th><th scope="col">edX: refused</th><th scope="col">Actions</th></tr></thead>
<tbody>${counts.map(
      (c) => html`<tr class="assignment-counts" data-assignment="${c.assignment}"><th scope="row"><a href="${link({ assignment: c.assignment, page: '1' })}">${c.assignment}</a></th><td class="learners">${c.learners}</td><td class="submitted">${c.submitted}</td><td class="graded">${c.graded}</td>
<td class="failed">${c.failed}</td><td class="waiting">${c.waiting}</td><td class="pb-sent">${c.passback.sent}</td><td class="pb-waiting">${c.passback.waiting}</td><td class="pb-refused">${c.passback.refused}</td>
<td><a class="regrade-all" href="staff/regrade-all?l=${encodeURIComponent(l)}&amp;assignment=${encodeURIComponent(c.assignment)}">Regrade all…</a></td></tr>`,
    )}</tbody></table>
<h2>Charts: ${focus.id}</h2>
${barChart(hist, { id: 'score-histogram', title: `Scores of ${focus.id} (counting submission per learner)`, unit: 'learners' })}
${barChart(passRates(tests), { id: 'test-pass-rates', title: `Pass rate per test, ${focus.id}`, unit: '% passing', max: 100 })}
${barChart(time.bars, { id: 'submissions-over-time', title: `Submissions of ${focus.id} over time${focus.due ? ' against the due date' : ''}`, unit: 'submissions', ...(time.marker ? { marker: time.marker } : {}) })}
<h2>Grades</h2>
<form id="filters" method="get" action="staff"><input type="hidden" name="l" value="${l}">
<label>Assignment <select name="assignment">${option('', 'all', query.filter.assignment)}${ids.map((id) => option(id, id, query.filter.assignment))}</select></label>
<label>Status <select name="status">${option('', 'any', query.filter.status)}${STATUS_FILTERS.map((s) => option(s, s, query.filter.status))}</select></label>
<label>edX <select name="passback">${option('', 'any', query.filter.passback)}${PASSBACK_FILTERS.map((s) => option(s, s === 'none' ? 'nothing to send' : s, query.filter.passback))}</select></label>
<label>Late <select name="late">${option('', 'any', query.filter.late === undefined ? undefined : query.filter.late ? 'yes' : 'no')}${option('yes', 'late', query.filter.late === true ? 'yes' : undefined)}${option('no', 'on time', query.filter.late === false ? 'no' : undefined)}</select></label>
<label>Learner <input type="search" name="learner" value="${query.filter.learner ?? ''}" placeholder="name, email or account"></label>
<button type="submit">Filter</button></form>
<p id="grades-count">${total} ${total === 1 ? 'row' : 'rows'}; page ${query.page} of ${pages}.</p>
<table id="grades"><thead><tr>${sortHead('learner', 'Learner')}<th scope="col">Email</th>${sortHead('assignment', 'Assignment')}${sortHead('status', 'Status')}${sortHead('score', 'Score')}${sortHead('received', 'Submitted')}<th scope="col">edX</th></tr></thead>
<tbody>${rows.map(
      (r) => html`<tr class="grade-row" data-submission="${r.submission}"><td class="learner"><a href="staff/learner?l=${encodeURIComponent(l)}&amp;owner=${encodeURIComponent(r.owner)}">${r.name ?? r.owner}</a>${r.name ? html`<br><small>${r.owner}</small>` : ''}</td>
<td class="email">${r.email ?? ''}</td><td class="assignment">${r.assignment}</td><td class="status status-${r.status}">${r.status}</td>
<td class="score">${r.status === 'graded' && r.score !== null ? formatGrade(gradeOf(r.score, points.get(r.assignment) ?? 1)) : ''}</td>
<td class="received">${when(r.receivedAt)}${r.late ? html` <b class="late">late</b>` : ''}</td>
<td class="passback">${r.passback ? pbWords[r.passback] ?? r.passback : ''}${r.passbackDetail ? html`<br><small>${r.passbackDetail}</small>` : ''}</td></tr>`,
    )}</tbody></table>
<nav id="pager">${query.page > 1 ? html`<a id="prev-page" href="${link({ page: String(query.page - 1) })}">← Previous</a>` : ''} ${query.page < pages ? html`<a id="next-page" href="${link({ page: String(query.page + 1) })}">Next →</a>` : ''}</nav>
<h2>Recent staff actions</h2>
${actionsTable(recent, zone)}`;
    res.type('html').send(page(`Course ${course.id}: overview`, body));
  });

  const actor = (ses: StaffSession) => ({ actorSub: ses.sub, actorName: ses.name });
  const hidden = (launch: string, csrf: string): Html => html`<input type="hidden" name="l" value="${launch}"><input type="hidden" name="csrf" value="${csrf}">`;
  const checkCsrf = (req: Request, csrf: string): void => {
    const given = (req.body as Record<string, unknown> | undefined)?.csrf;
    if (typeof given !== 'string' || !safeEqual(given, csrf)) throw new ForbiddenError('This form has expired or did not come from Gofer. Reload the page and try again.');
  };
  const ownSubmission = async (ses: StaffSession, id: unknown) => {
    const sub = typeof id === 'string' && id ? await deps.submissions.get(id) : undefined;
    // another course's submission is answered exactly like one that does not exist
    if (!sub || sub.course !== ses.course) throw new ForbiddenError('That submission is not in your course.');
    return sub;
  };
  const back = (launch: string, owner: string) => `learner?l=${encodeURIComponent(launch)}&owner=${encodeURIComponent(owner)}`;

  router.get('/staff/learner', async (req: Request, res: Response) => {
    const { launch, session: ses, csrf } = await deps.staffOnly(req);
    const course = courseOf(deps.config, ses);
    const zone = zoneOf(course);
    const when = (ms: number | null) => timeHtml(ms, zone);
    const owner = typeof req.query.owner === 'string' ? req.query.owner.slice(0, 200) : '';
    if (!owner) throw new InputError('Say which learner: owner=<their account>.');
    const subs = (await deps.submissions.list({ owner, course: course.id })).reverse();
    // a learner is reached only through their submissions in this course: no name, no email otherwise
    if (!subs.length) throw new ForbiddenError('That learner has no submissions in your course.');
    const ids = subs.map((s) => s.id);
    const [person, results, passbacks, overrides, log] = await Promise.all([
      deps.report.person(owner),
      deps.report.results(ids),
      deps.report.passbacks(ids),
      deps.actions.overrides(ids),
      deps.actions.list(course.id, { owner, limit: 100 }),
    ]);
    const points = new Map(course.assignments.map((a) => [a.id, a.points]));
    const limitOf = (assignment: string) => assignmentOf(course, assignment, { aliases: false })?.timeoutSeconds ?? deps.config.grading.timeoutSeconds;
    const blocks = await Promise.all(
      subs.map(async (s) => {
        const tests = await deps.submissions.tests(s.id);
        const problem = s.status === 'failed' ? await deps.submissions.problem(s.id) : null;
        const latest = results.find((r) => r.submissionId === s.id);
        const pts = points.get(s.assignment) ?? 1;
        // the grade staff set stands until cleared; a grader's result after it is shown beside it
        const override = [...overrides.values()].find((o) => o.submissionId === s.id && o.clearedAt === null);
        const regraded = override ? results.find((r) => r.submissionId === s.id && r.id > override.resultId && !overrides.has(r.id)) : undefined;
        const setWords = override ? `${override.kind === 'excuse' ? 'the excuse' : 'the grade set by staff'}, ${formatGrade(gradeOf(override.score, pts))}, stands` : '';
        const history = passbacks.filter((p) => p.submissionId === s.id);
        return html`<section class="submission" data-submission="${s.id}" id="s-${s.id}">
<h3>${s.assignment}: ${when(s.receivedAt)}</h3>
<p>Status <b class="status status-${s.status}">${s.status === 'queued' || s.status === 'grading' ? `${s.status} (waiting for a grader)` : s.status}</b>${s.status === 'graded' && s.score !== null ? html`, score <b class="score">${formatGrade(gradeOf(s.score, pts))}</b>` : ''}${override ? html` <b class="override">${override.kind === 'excuse' ? 'excused' : 'set by staff'}: ${override.reason}</b>` : ''}.
${regraded ? html`<span class="regraded">Regraded: ${regraded.status === 'graded' ? formatGrade(gradeOf(regraded.score, pts)) : regraded.status}; ${setWords}.</span>` : ''}
Time limit <span class="time-limit">${limitOf(s.assignment)} s</span>${latest && latest.durationMs > 0 ? html`; graded in ${(latest.durationMs / 1000).toFixed(1)} s` : ''}.
<a class="notebook" href="notebook?l=${encodeURIComponent(launch)}&amp;submission=${encodeURIComponent(s.id)}">Download the notebook</a></p>
${s.message ? html`<pre class="message">${s.message}</pre>` : ''}${problem ? html`<pre class="problem">${problem}</pre>` : ''}
${tests.length ? html`<table class="tests"><thead><tr><th scope="col">Test</th><th scope="col">Points</th><th scope="col">Result</th><th scope="col">Message</th></tr></thead><tbody>${tests.map((t) => html`<tr class="test ${t.passed ? 'passed' : 'failed'}"><td>${t.name}${t.hidden ? html` <small class="hidden-test">(hidden from learners)</small>` : ''}</td><td>${t.points} / ${t.maxPoints}</td><td>${t.passed ? 'passed' : 'failed'}</td><td>${t.message ? html`<pre>${t.message}</pre>` : ''}</td></tr>`)}</tbody></table>` : ''}
<h4>Sent to edX</h4>
${history.length ? html`<table class="passbacks"><thead><tr><th scope="col">Queued</th><th scope="col">Grade</th><th scope="col">State</th><th scope="col">Attempts</th><th scope="col">Sent</th><th scope="col">The platform's answer</th></tr></thead><tbody>${history.map((p) => html`<tr class="passback passback-${p.status}"><td>${when(p.createdAt)}</td><td>${formatGrade(gradeOf(p.score, pts))}${overrides.has(p.resultId) ? ' (set by staff)' : ''}</td><td class="state">${p.status}</td><td>${p.attempts}</td><td>${when(p.sentAt)}</td><td class="answer">${p.lastError ?? ''}</td></tr>`)}</tbody></table>` : html`<p class="no-passback">Nothing sent for this submission.</p>`}
<form method="post" action="regrade" class="inline">${hidden(launch, csrf)}<input type="hidden" name="submission" value="${s.id}"><button type="submit" class="regrade">Regrade</button></form>
<form method="post" action="resend" class="inline">${hidden(launch, csrf)}<input type="hidden" name="submission" value="${s.id}"><button type="submit" class="resend">Resend score</button></form>
<form method="post" action="override" class="override-form">${hidden(launch, csrf)}<input type="hidden" name="submission" value="${s.id}">
<label>Grade <select name="kind"><option value="override">set points</option><option value="excuse">excuse (full points)</option></select></label>
<label>Points (of ${pts}) <input name="points" inputmode="decimal" size="5"></label>
<label>Reason <input name="reason" required maxlength="500" size="30"></label> <button type="submit" class="set-grade">Set grade and send to edX</button></form>
${override ? html`<form method="post" action="clear-override" class="clear-override-form">${hidden(launch, csrf)}<input type="hidden" name="submission" value="${s.id}">
<label>Reason <input name="reason" required maxlength="500" size="30"></label> <button type="submit" class="clear-override">Clear the grade set by staff and send the grade that counts</button></form>` : ''}
</section>`;
      }),
    );
    const body = html`<nav><a href="../staff?l=${encodeURIComponent(launch)}">← Course overview</a></nav>
<p id="who"><b>${person.name ?? owner}</b>${person.email ? html` · <a href="mailto:${person.email}">${person.email}</a>` : ''} · account <code>${owner}</code></p>
${blocks}
<h2>Staff actions for this learner</h2>
${actionsTable(log, zone)}`;
    res.type('html').send(page(`Learner: ${person.name ?? owner}`, body));
  });

  router.get('/staff/notebook', async (req: Request, res: Response) => {
    const { session: ses } = await deps.staffOnly(req);
    const sub = await ownSubmission(ses, req.query.submission);
    const nb = await deps.submissions.notebook(sub.id);
    if (nb === undefined) throw new ForbiddenError('That notebook is no longer stored.');
    res.type('application/x-ipynb+json').attachment(`${sub.assignment}-${sub.owner}-${sub.id.slice(0, 8)}.ipynb`).send(nb);
  });

  const form = express.urlencoded({ extended: false, limit: '16kb' });
  router.post('/staff/regrade', form, async (req: Request, res: Response) => {
    const { launch, session: ses, csrf } = await deps.staffOnly(req);
    checkCsrf(req, csrf);
    const sub = await ownSubmission(ses, req.body.submission);
    await deps.submissions.regrade(sub.id, deps.clock.now(), deps.config.queue.maxAttempts);
    await deps.actions.record({ course: ses.course, kind: 'regrade', ...actor(ses), assignment: sub.assignment, owner: sub.owner, submissionId: sub.id, count: 1, reason: null, createdAt: deps.clock.now() });
    deps.wakeGrading();
    res.redirect(303, back(launch, sub.owner));
  });
  router.post('/staff/resend', form, async (req: Request, res: Response) => {
    const { launch, session: ses, csrf } = await deps.staffOnly(req);
    checkCsrf(req, csrf);
    const sub = await ownSubmission(ses, req.body.submission);
    if (!(await deps.resend(sub.id))) throw new InputError('This submission has no grade to send yet.');
    await deps.actions.record({ course: ses.course, kind: 'resend', ...actor(ses), assignment: sub.assignment, owner: sub.owner, submissionId: sub.id, count: 1, reason: null, createdAt: deps.clock.now() });
    res.redirect(303, back(launch, sub.owner));
  });
  router.post('/staff/override', form, async (req: Request, res: Response) => {
    const { launch, session: ses, csrf } = await deps.staffOnly(req);
    checkCsrf(req, csrf);
    const sub = await ownSubmission(ses, req.body.submission);
    const pts = assignmentOf(courseOf(deps.config, ses), sub.assignment, { aliases: false })?.points;
    if (pts === undefined) throw new InputError(`The assignment ${sub.assignment} is no longer configured.`);
    const kind = req.body.kind === 'excuse' ? 'excuse' : req.body.kind === 'override' ? 'override' : undefined;
    if (!kind) throw new InputError('Choose "set points" or "excuse".');
    const reason = String(req.body.reason ?? '').trim();
    if (!reason) throw new InputError('Give a reason: it is shown to staff with the grade.');
    let score = 1;
    if (kind === 'override') {
      const given = String(req.body.points ?? '').trim();
      const n = /^\d+(\.\d+)?$/.test(given) ? Number(given) : NaN;
      if (!(n >= 0 && n <= pts)) throw new InputError(`Points must be a number from 0 to ${pts}; got "${given.slice(0, 20)}".`);
      score = n / pts;
    }
    await deps.actions.setGrade({ submissionId: sub.id, kind, score, reason: reason.slice(0, 500), ...actor(ses), now: deps.clock.now() }, deps.outbox);
    deps.notifyPassback();
    res.redirect(303, back(launch, sub.owner));
  });

  router.post('/staff/clear-override', form, async (req: Request, res: Response) => {
    const { launch, session: ses, csrf } = await deps.staffOnly(req);
    checkCsrf(req, csrf);
    const sub = await ownSubmission(ses, req.body.submission);
    const assignment = assignmentOf(courseOf(deps.config, ses), sub.assignment, { aliases: false });
    if (!assignment) throw new InputError(`The assignment ${sub.assignment} is no longer configured.`);
    const reason = String(req.body.reason ?? '').trim();
    if (!reason) throw new InputError('Give a reason: it is shown to staff with the action.');
    const done = await deps.actions.clearOverride(
      { submissionId: sub.id, reason: reason.slice(0, 500), ...actor(ses), now: deps.clock.now(), maxAttempts: deps.config.queue.maxAttempts },
      { points: assignment.points, select: assignment.select, late: assignment.late, ...(assignment.due ? { due: assignment.due } : {}) },
      deps.outbox,
    );
    if (!done) throw new InputError('No grade set by staff stands on this submission.');
    deps.notifyPassback();
    deps.wakeGrading();
    res.redirect(303, back(launch, sub.owner));
  });

  router.get('/staff/regrade-all', async (req: Request, res: Response) => {
    const { launch, session: ses, csrf } = await deps.staffOnly(req);
    const course = courseOf(deps.config, ses);
    const assignment = assignmentOf(course, typeof req.query.assignment === 'string' ? req.query.assignment : '', { aliases: false });
    if (!assignment) throw new InputError(`Say which assignment: one of ${course.assignments.map((a) => a.id).join(', ')}.`);
    const n = (await deps.report.countingIds(course, assignment.id)).length;
    const waiting = await deps.report.waitingToGrade(course, assignment.id);
    const started = req.query.started === '1';
    const body = html`<nav><a href="../staff?l=${encodeURIComponent(launch)}">← Course overview</a></nav>
${started || waiting > 0
      ? html`<p id="regrade-progress" data-waiting="${waiting}">${waiting > 0 ? `Regrading: ${waiting} ${waiting === 1 ? 'submission' : 'submissions'} of ${assignment.id} still waiting for a grader. This page reloads every 5 seconds.` : `Done: no submission of ${assignment.id} is waiting for a grader.`}</p>${waiting > 0 ? html`<meta http-equiv="refresh" content="5">` : ''}`
      : ''}
<form id="regrade-all" method="post" action="regrade-all">${hidden(launch, csrf)}<input type="hidden" name="assignment" value="${assignment.id}">
<p id="regrade-count" data-count="${n}">Regrade the counting submission of every learner of ${assignment.id}: ${n} ${n === 1 ? 'submission' : 'submissions'}. Their new grades are sent to edX, except where a grade set by staff stands (it stays until cleared).</p>
<button type="submit" id="confirm-regrade-all" ${n === 0 ? html`disabled` : ''}>Regrade ${n} ${n === 1 ? 'submission' : 'submissions'}</button></form>`;
    res.type('html').send(page(`Regrade ${assignment.id}`, body));
  });
  router.post('/staff/regrade-all', form, async (req: Request, res: Response) => {
    const { launch, session: ses, csrf } = await deps.staffOnly(req);
    checkCsrf(req, csrf);
    const course = courseOf(deps.config, ses);
    const assignment = assignmentOf(course, typeof req.body.assignment === 'string' ? req.body.assignment : '', { aliases: false });
    if (!assignment) throw new InputError(`Say which assignment: one of ${course.assignments.map((a) => a.id).join(', ')}.`);
    const ids = await deps.report.countingIds(course, assignment.id);
    const n = await deps.submissions.regradeMany(ids, deps.clock.now(), deps.config.queue.maxAttempts);
    await deps.actions.record({ course: course.id, kind: 'regrade_all', ...actor(ses), assignment: assignment.id, owner: null, submissionId: null, count: n, reason: null, createdAt: deps.clock.now() });
    deps.wakeGrading();
    res.redirect(303, `regrade-all?l=${encodeURIComponent(launch)}&assignment=${encodeURIComponent(assignment.id)}&started=1`);
  });

  return router;
}

