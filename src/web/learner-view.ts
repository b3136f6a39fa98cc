import { assignmentKey } from '../config/courses.js';
import type { TestResult } from '../grading/result.js';
import { formatGrade, gradeOf, gradeView } from '../grading/scale.js';
import { html, type Html } from '../lib/html.js';
import { DEFAULT_TIME_ZONE, timeHtml } from '../lib/time-zone.js';
import type { Submission } from '../submissions/store.js';

/**
 * What a learner sees of their submissions, computed once on the server and used both by the
 * server-rendered page and by its status endpoint (whose `html` fields are the same fragments),
 * so the page reads the same whether it was reloaded or updated itself.
 */

/** The three steps a learner watches: received → grading (elapsed, limit) → result. */
export type Step = 'received' | 'grading' | 'result';

/** How a submission's grade stands with the platform (an outbox row, as the pages get it). */
export interface PassbackState {
  status: string;
  detail: string | null;
}

export interface SubmissionView {
  id: string;
  /** 1 for the learner's first submission of the assignment. */
  number: number;
  course: string;
  assignment: string;
  step: Step;
  status: Submission['status'];
  receivedAt: string;
  gradedAt: string | null;
  /** When the running grading job started, while it runs. */
  gradingStartedAt: string | null;
  limitSeconds: number;
  grade: { given: number; maximum: number; text: string } | null;
  /** Why it is not sent to edX, or how it stands there; null where no platform is involved. */
  edx: string | null;
  html: string;
}

export interface LearnerView {
  submissions: SubmissionView[];
  /** Every submission has its result: nothing left to watch. */
  done: boolean;
  /** The sentence for the live region: how the newest submission stands. */
  announce: string;
  /** What the edX gradebook will show for the assignment, stated once; null without a platform. */
  edxTotal: string | null;
}

export interface AssignmentFacts {
  points: number;
  select: 'latest' | 'best';
  limitSeconds: number;
  due: Date | undefined;
  late: 'accept' | 'reject';
  /** The course's `timeZone`, when it sets one. */
  timeZone?: string | undefined;
}

export interface PlatformFacts {
  /** The component's weight in edX (its line item's scoreMaximum), when read at a launch. */
  weight: number | null;
  /** The line item's end date (edX's due date), epoch ms. */
  endAt: number | null;
  states: Map<string, PassbackState>;
}

/** Passback states that change by themselves within seconds. */
const IN_FLIGHT = new Set(['pending', 'sending']);

const STATUS_WORDS: Record<Submission['status'], string> = {
  queued: 'received, waiting to be graded',
  grading: 'grading',
  graded: 'graded',
  timeout: 'not graded: the notebook ran longer than the time limit',
  out_of_memory: 'not graded: the notebook ran out of memory',
  invalid_notebook: 'not graded: this is not a notebook Gofer can run',
  kernel_died: 'not graded: the notebook stopped the Python kernel',
  failed: 'could not be graded; course staff can see why',
};

export function stepOf(status: Submission['status']): Step {
  return status === 'queued' ? 'received' : status === 'grading' ? 'grading' : 'result';
}

/** "1:05" for 65 seconds. */
export function clockText(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/**
 * A time on a learner's page: in the course's time zone, named, when the course sets one; else in
 * UTC, which the page's script rewrites in the reader's local time.
 */
export function timeText(ms: number, courseZone?: string): Html {
  return timeHtml(ms, courseZone ?? DEFAULT_TIME_ZONE, { fixed: courseZone !== undefined });
}

interface Input {
  sub: Submission;
  tests: TestResult[];
  startedAt: number | undefined;
}

/**
 * The learner's view of one assignment's submissions (or, with `facts` per submission, of all
 * their assignments: the `{prefix}me` page), newest first.
 */
export function learnerView(
  inputs: Input[],
  facts: (sub: Submission) => AssignmentFacts,
  platform: PlatformFacts | null,
  opts: { now: number; showAssignment: boolean },
): LearnerView {
  const ordered = [...inputs].sort((a, b) => a.sub.receivedAt - b.sub.receivedAt || a.sub.id.localeCompare(b.sub.id));
  const numbers = new Map<string, number>();
  const perAssignment = new Map<string, number>();
  for (const i of ordered) {
    const k = assignmentKey(i.sub.course, i.sub.assignment);
    const n = (perAssignment.get(k) ?? 0) + 1;
    perAssignment.set(k, n);
    numbers.set(i.sub.id, n);
  }
  const views = ordered
    .map((i) => submissionView(i, numbers.get(i.sub.id)!, facts(i.sub), platform, ordered, opts))
    .reverse();
  const newest = views[0];
  return {
    submissions: views,
    // a grade on its way to edX (pending or sending) is news still to come: keep following it
    done: views.every((v) => v.step === 'result' && !IN_FLIGHT.has(platform?.states.get(v.id)?.status ?? '')),
    announce: newest ? announce(newest) : 'No submissions yet.',
    edxTotal: platform && ordered.length ? edxTotal(ordered.map((i) => i.sub), numbers, facts(ordered[0]!.sub), platform) : null,
  };
}

function announce(v: SubmissionView): string {
  if (v.step === 'received') return `Submission ${v.number}: received, waiting to be graded.`;
  if (v.step === 'grading') return `Submission ${v.number}: grading (time limit ${clockText(v.limitSeconds)}).`;
  return `Submission ${v.number}: ${v.grade ? v.grade.text : STATUS_WORDS[v.status]}.`;
}

function gradeText(sub: Submission, points: number): SubmissionView['grade'] {
  return sub.status === 'graded' ? gradeView(sub.score, points) : null;
}

/** Received after the due date (Gofer's own, or the platform's). */
function late(sub: Submission, f: AssignmentFacts, platform: PlatformFacts): boolean {
  return (f.due !== undefined && sub.receivedAt > f.due.getTime()) || (platform.endAt !== null && sub.receivedAt > platform.endAt);
}

/** Why a graded submission was (not) sent to edX, in the learner's terms. */
function edxWords(sub: Submission, f: AssignmentFacts, platform: PlatformFacts, all: Input[]): string | null {
  const st = platform.states.get(sub.id);
  if (sub.status !== 'graded') return null;
  const best = () => {
    const graded = all.map((i) => i.sub).filter((s) => s.status === 'graded' && s.score !== null && s.course === sub.course && s.assignment === sub.assignment);
    const top = graded.reduce((a, b) => ((b.score ?? 0) > (a.score ?? 0) ? b : a), graded[0]!);
    return formatGrade(gradeOf(top.score ?? 0, f.points));
  };
  const words: string[] = [];
  switch (st?.status) {
    case 'sent':
      words.push(platform.weight === 0 ? "sent to edX, which will not record it: the component's weight in edX is 0" : 'sent to edX');
      break;
    case 'pending':
    case 'sending':
      words.push('being sent to edX');
      break;
    case 'waiting':
      words.push('waiting: launch the assignment from the course (and connect your JupyterHub account) so Gofer can send it');
      break;
    case 'superseded':
      words.push(f.select === 'best' ? `not sent to edX: your best so far is ${best()}` : 'not sent to edX: a newer grade replaced it');
      break;
    case 'late':
      words.push('not sent to edX: past due (received after the deadline, and late work is not accepted)');
      break;
    case 'failed':
      words.push('edX refused it; course staff can see why');
      break;
    case undefined:
      words.push(f.select === 'best' ? `not sent to edX: your best so far is ${best()}` : "not sent to edX: a later submission's grade is the latest");
      break;
    default:
      words.push(st!.status);
  }
  const sentOrSending = st && ['sent', 'pending', 'sending', 'waiting'].includes(st.status);
  if (sentOrSending && sub.score === 0) words.push('edX does not record 0, so its gradebook shows nothing for it');
  if (sentOrSending && late(sub, f, platform)) words.push('past due: edX records it only if the component accepts grades past due');
  return words.join('; ');
}

/**
 * What edX's gradebook shows, as edX computes it: the last score Gofer sent (or is sending)
 * replaces the one before, and edX publishes min(given, maximum) / maximum × the component's
 * weight, except a score of 0.
 */
function edxTotal(subs: Submission[], numbers: Map<string, number>, f: AssignmentFacts, platform: PlatformFacts): string | null {
  const counted = subs.filter((s) => s.status === 'graded' && ['sent', 'pending', 'sending', 'waiting'].includes(platform.states.get(s.id)?.status ?? '')).pop();
  if (platform.weight === 0) return "edX's gradebook will not show grades for this assignment: the component's weight in edX is 0.";
  if (!counted) return 'edX has no grade from Gofer for this assignment yet.';
  const weight = platform.weight ?? f.points;
  const shown = formatGrade(gradeOf(counted.score ?? 0, weight));
  if (!counted.score) return `edX's gradebook shows nothing for this assignment: submission ${numbers.get(counted.id)} scored 0, and edX does not record 0.`;
  const pending = platform.states.get(counted.id)?.status !== 'sent' ? ' once it is sent' : '';
  const lateNote = late(counted, f, platform) ? ' (it was received past due: edX records it only if the component accepts grades past due)' : '';
  return `edX's gradebook will show ${shown}${pending}: submission ${numbers.get(counted.id)} counts (${f.select === 'best' ? 'your best' : 'your latest'} graded)${lateNote}.`;
}

/** All a learner is told of hidden tests (their names, results and output are for staff). */
export const HIDDEN_TESTS = 'The score also includes hidden tests; their results are not shown.';

function testsHtml(tests: TestResult[]): Html {
  if (!tests.length) return html``;
  const total = tests.reduce((a, t) => a + t.maxPoints, 0);
  const equal = tests.every((t) => t.maxPoints === tests[0]!.maxPoints);
  const visible = tests.filter((t) => !t.hidden);
  const hidden = tests.some((t) => t.hidden);
  return html`<p class="weights">${equal ? 'The tests count equally.' : `Each test's weight is shown, out of ${num(total)} test points.`}</p>
<ul class="tests">${visible.map(
    (t) => html`<li class="${t.passed ? 'passed' : 'failed'}"><span class="test-name">${t.name}</span>: ${t.passed ? 'passed' : 'failed'} (${num(t.points)} of ${num(t.maxPoints)}, weight ${num(t.maxPoints)}/${num(total)})${t.message ? html`<pre>${t.message}</pre>` : false}</li>`,
  )}${hidden ? html`<li class="hidden-tests">${HIDDEN_TESTS}</li>` : false}</ul>`;
}

function num(x: number): string {
  return String(Math.round(x * 100) / 100);
}

function submissionView(i: Input, number: number, f: AssignmentFacts, platform: PlatformFacts | null, all: Input[], opts: { now: number; showAssignment: boolean }): SubmissionView {
  const { sub } = i;
  const step = stepOf(sub.status);
  const grade = gradeText(sub, f.points);
  const edx = platform ? edxWords(sub, f, platform, all) : null;
  const startedAt = step === 'grading' && i.startedAt !== undefined ? i.startedAt : null;
  const headingId = `sub-${sub.id}`;
  const elapsed =
    step === 'grading'
      ? html` <span class="elapsed" data-started="${startedAt === null ? '' : new Date(startedAt).toISOString()}" data-limit="${f.limitSeconds}">(${startedAt === null ? '' : `${clockText((opts.now - startedAt) / 1000)} elapsed, `}limit ${clockText(f.limitSeconds)})</span>`
      : false;
  const markup = html`<li class="submission" data-submission="${sub.id}" data-step="${step}" aria-labelledby="${headingId}">
<h3 id="${headingId}">Submission ${number}${opts.showAssignment ? html` (<span class="assignment">${sub.course} / ${sub.assignment}</span>)` : false}, received ${timeText(sub.receivedAt, f.timeZone)}</h3>
<p class="steps" aria-hidden="true"><span class="${step === 'received' ? 'now' : 'past'}">received</span> → <span class="${step === 'grading' ? 'now' : step === 'result' ? 'past' : 'future'}">grading</span> → <span class="${step === 'result' ? 'now' : 'future'}">result</span></p>
<p>Status: <span class="status status-${sub.status}">${STATUS_WORDS[sub.status]}</span>${elapsed}</p>
${grade ? html`<p>Score: <span class="score">${grade.text}</span>${sub.gradedAt !== null ? html`, graded ${timeText(sub.gradedAt, f.timeZone)}` : false}</p>` : false}
${edx ? html`<p>edX: <span class="passback">${edx}</span></p>` : false}
${sub.message ? html`<p class="message">${sub.message}</p>` : false}
${step === 'result' ? testsHtml(i.tests) : false}
</li>`;
  return {
    id: sub.id,
    number,
    course: sub.course,
    assignment: sub.assignment,
    step,
    status: sub.status,
    receivedAt: new Date(sub.receivedAt).toISOString(),
    gradedAt: sub.gradedAt === null ? null : new Date(sub.gradedAt).toISOString(),
    gradingStartedAt: startedAt === null ? null : new Date(startedAt).toISOString(),
    limitSeconds: f.limitSeconds,
    grade,
    edx,
    html: markup.toString(),
  };
}
