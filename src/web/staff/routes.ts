import express, { type Request, type Response, type Router } from 'express';
import type { Config } from '../../config/schema.js';
import type { Clock } from '../../lib/clock.js';
import { InputError, ForbiddenError } from '../../lib/errors.js';
import { html, type Html } from '../../lib/html.js';
import { formatGrade, gradeOf } from '../../grading/scale.js';
import type { LtiSession } from '../../lti/launch.js';
import type { SubmissionStore } from '../../submissions/store.js';
import { page } from '../html.js';
import { barChart, overTime, passRates, scoreHistogram } from './charts.js';
import { CourseReport, SORTS, type GradeFilter, type Sort } from './report.js';

export interface StaffDeps {
  config: Config;
  report: CourseReport;
  submissions: SubmissionStore;
  clock: Clock;
  staffOnly: (req: Request) => Promise<{ launch: string; session: LtiSession }>;
  checkCsrf: (req: Request, launch: string) => void;
  csrfFor: (launch: string) => string;
}

export const PAGE_SIZE = 50;

/** A time for people: `<time datetime>` with the UTC date and minute. */
export function when(ms: number | null): Html {
  if (ms === null) return html``;
  const iso = new Date(ms).toISOString();
  return html`<time datetime="${iso}">${iso.slice(0, 16).replace('T', ' ')} UTC</time>`;
}

function courseOf(config: Config, ses: LtiSession) {
  const course = config.courses.find((c) => c.id === ses.course);
  if (!course) throw new ForbiddenError('This course is no longer configured in Gofer.');
  return course;
}

const STATUS_FILTERS = ['graded', 'failed', 'waiting'] as const;
const PASSBACK_FILTERS = ['sent', 'waiting', 'refused', 'late', 'superseded', 'none'] as const;

/** Reads the grades table's filter, sort and page from the query; a value it does not know is refused by name. */
export function readGradeQuery(q: Request['query'], assignments: string[]): { filter: GradeFilter; sort: Sort; desc: boolean; page: number } {
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
    const ids = course.assignments.map((a) => a.id);
    const query = readGradeQuery(req.query, ids);
    const counts = await deps.report.counts(course);
    const focus = course.assignments.find((a) => a.id === (query.filter.assignment ?? ses.assignment)) ?? course.assignments[0]!;
    const bins = await deps.report.scoreBins(course, focus.id);
    const tests = await deps.report.testPassRates(course, focus.id);
    const arrivals = await deps.report.arrivals(course, focus.id);
    const time = overTime(arrivals.counts, arrivals.bucket, focus.due);
    const hist = scoreHistogram([]).map((b, i) => ({ ...b, value: bins[i] ?? 0 }));
    const { total, rows } = await deps.report.grades(course, query.filter, query.sort, query.desc, PAGE_SIZE, (query.page - 1) * PAGE_SIZE);
    const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
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
<nav><a href="course?l=${encodeURIComponent(l)}">Simple grades list and CSV</a></nav>
<h2>Assignments</h2>
<table id="overview"><thead><tr><th scope="col">Assignment</th><th scope="col">Learners</th><th scope="col">Submitted</th><th scope="col">Graded</th><th scope="col">Failed</th><th scope="col">Waiting</th>
<th scope="col">edX: sent</th><th scope="col">edX: waiting</th><th scope="col">edX: refused</th></tr></thead>
<tbody>${counts.map(
      (c) => html`<tr class="assignment-counts" data-assignment="${c.assignment}"><th scope="row"><a href="${link({ assignment: c.assignment, page: '1' })}">${c.assignment}</a></th><td class="learners">${c.learners}</td><td class="submitted">${c.submitted}</td><td class="graded">${c.graded}</td>
<td class="failed">${c.failed}</td><td class="waiting">${c.waiting}</td><td class="pb-sent">${c.passback.sent}</td><td class="pb-waiting">${c.passback.waiting}</td><td class="pb-refused">${c.passback.refused}</td></tr>`,
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
<nav id="pager">${query.page > 1 ? html`<a id="prev-page" href="${link({ page: String(query.page - 1) })}">← Previous</a>` : ''} ${query.page < pages ? html`<a id="next-page" href="${link({ page: String(query.page + 1) })}">Next →</a>` : ''}</nav>`;
    res.type('html').send(page(`Course ${course.id}: overview`, body.toString()));
  });

  return router;
}

