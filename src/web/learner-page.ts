import { findAssignment } from '../config/courses.js';
import express, { type Request, type Response, type Router } from 'express';
import type { Config } from '../config/schema.js';
import { html, unsafeRaw, type Html } from '../lib/html.js';
import type { Identity } from '../submissions/identity.js';
import type { Submission, SubmissionStore } from '../submissions/store.js';
import { LEARNER_SCRIPT } from './learner-script.js';
import { learnerView, type AssignmentFacts, type LearnerView, type PassbackState, type PlatformFacts } from './learner-view.js';

/** How often the page asks for news while a submission is not graded yet. */
export const POLL_MS = 1000;

const STYLE = `
*{box-sizing:border-box}
body{font-family:system-ui,sans-serif;margin:0;color:#1b1b1b;line-height:1.45;overflow-wrap:anywhere}
header,main,footer{max-width:48rem;margin:0 auto;padding:0 1rem}
header{padding-top:.5rem;color:#555}
h1{margin:.4rem 0 .8rem;font-size:1.6rem}h2{font-size:1.2rem}h3{font-size:1rem;margin:.2rem 0}
ol#submissions{list-style:none;padding:0;margin:0}
li.submission{border:1px solid #ddd;border-radius:.4rem;padding:.6rem .8rem;margin:.6rem 0}
.steps .now{font-weight:bold}.steps .future{color:#888}
.status-graded{color:#176f2c}.status-failed,.status-timeout,.status-out_of_memory,.status-kernel_died,.status-invalid_notebook{color:#a4262c}
.tests{padding-left:1.2rem}.tests .failed{color:#a4262c}
pre{background:#f6f6f6;padding:.5rem;white-space:pre-wrap;overflow-wrap:anywhere;max-width:100%}
.notice{padding:.5rem .8rem;border-radius:.4rem;background:#eef6ee}.notice-rejected{background:#fbeaea}.notice-duplicate{background:#f4f1e6}
#status{font-weight:bold}
form#upload{margin:.8rem 0}input[type=file]{max-width:100%}
button{font-size:1rem;padding:.3rem .8rem}
`;

/**
 * A learner page: a banner, the main content (with the status endpoint the script follows, when
 * there is one) and the page's script, which is served by Gofer as a file.
 */
export function learnerDocument(title: string, main: Html, opts: { statusUrl?: string; done?: boolean; script?: string } = {}): string {
  const watched = opts.statusUrl !== undefined;
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Gofer</title>
<style>${STYLE}</style>
${watched ? html`<script src="${opts.script ?? 'learner.js'}" defer></script>` : false}
</head><body>
<header><p>Gofer · notebook grading</p></header>
<main id="main"${watched ? html` data-status-url="${opts.statusUrl!}" data-poll-ms="${POLL_MS}" data-done="${String(opts.done ?? true)}"` : false}>
<h1>${title}</h1>
${main}
</main>
</body></html>`.toString();
}

/** The page's script, for a router of learner pages. */
export function serveLearnerScript(router: Router): void {
  router.get('/learner.js', (_req, res) => {
    res.type('application/javascript').set('Cache-Control', 'no-cache').send(LEARNER_SCRIPT);
  });
}

/** The submissions part of a learner page: the live status line, and the list the script keeps current. */
export function submissionsSection(view: LearnerView): Html {
  return html`<p id="status" role="status" aria-live="polite">${view.announce}</p>
<section aria-labelledby="submissions-heading"><h2 id="submissions-heading">Your submissions</h2>
<p id="no-submissions"${view.submissions.length ? html` hidden` : false}>No submissions yet: open the notebook in JupyterHub and press Submit.</p>
<ol id="submissions">${view.submissions.map((s) => unsafeRaw(s.html)) /* rendered by learnerView with `html` */}</ol></section>`;
}


/** The status endpoint's answer: the view, and the server's clock for elapsed times. */
export function statusJson(view: LearnerView, now: number): Record<string, unknown> {
  return { now: new Date(now).toISOString(), ...view };
}

/** The facts of a submission's assignment that its view needs, from the configuration. */
export function assignmentFacts(config: Pick<Config, 'courses' | 'grading'>): (sub: Pick<Submission, 'course' | 'assignment'>) => AssignmentFacts {
  return (sub) => {
    const found = findAssignment(config, sub.course, sub.assignment);
    const a = found?.assignment;
    return { points: a?.points ?? 1, select: a?.select ?? 'latest', limitSeconds: a?.timeoutSeconds ?? config.grading.timeoutSeconds, due: a?.due, late: a?.late ?? 'accept', timeZone: found?.course.timeZone };
  };
}

/** One learner's submissions (all, or of one assignment) as they see them, newest first. */
export async function viewOf(
  submissions: SubmissionStore,
  config: Pick<Config, 'courses' | 'grading'>,
  filter: { owner: string; course?: string; assignment?: string },
  /** What the platform knows of these submissions (null: LTI is off). */
  platformOf: (submissionIds: string[]) => Promise<PlatformFacts | null>,
  now: number,
  limit = 50,
): Promise<LearnerView> {
  const all = await submissions.list(filter);
  // all of them count for their numbers and for "your best so far"; the newest `limit` are shown
  const shownSubs = all.slice(-limit);
  const shown = new Set(shownSubs.map((s) => s.id));
  const [platform, started, tests] = await Promise.all([
    platformOf(all.map((s) => s.id)),
    submissions.gradingStarted(shownSubs.filter((s) => s.status === 'grading').map((s) => s.id)),
    submissions.testsOf(shownSubs.filter((s) => s.status !== 'queued' && s.status !== 'grading').map((s) => s.id)),
  ]);
  const inputs = all.map((sub) => ({ sub, tests: (shown.has(sub.id) && tests.get(sub.id)) || [], startedAt: started.get(sub.id) }));
  const view = learnerView(inputs, assignmentFacts(config), platform, { now, showAssignment: filter.assignment === undefined });
  return { ...view, submissions: view.submissions.slice(0, limit) };
}

/**
 * `{prefix}me`: the signed-in learner's submissions with status, score and per-test feedback
 * (hidden tests withheld), following their grading; `{prefix}me/status` is its status endpoint.
 * Browsers without a session are sent to the hub login.
 */
export function learnerPageRouter(deps: {
  submissions: SubmissionStore;
  config: Pick<Config, 'courses' | 'grading'>;
  identity: (req: Request) => Promise<Identity | undefined>;
  prefix: string;
  now: () => number;
  /** Gofer logs browsers in through the hub (`{prefix}login`); without a hub there is no sign-in here. */
  hubLogin: boolean;
  /** How each submission's grade stands with the platform, when LTI is on. */
  passbackStates?: (submissionIds: string[]) => Promise<Map<string, PassbackState>>;
}): Router {
  const router = express.Router();
  serveLearnerScript(router);
  // what became of each grade in edX; each assignment's own page (after a launch) also says what edX shows in all
  const mine = async (owner: string): Promise<LearnerView> => {
    const states = deps.passbackStates;
    const platformOf = async (ids: string[]): Promise<PlatformFacts | null> => (states ? { weight: null, endAt: null, states: await states(ids) } : null);
    return { ...(await viewOf(deps.submissions, deps.config, { owner }, platformOf, deps.now())), edxTotal: null };
  };
  router.get('/me', async (req: Request, res: Response) => {
    const who = await deps.identity(req);
    if (!who && !deps.hubLogin) {
      const body = html`<p id="no-hub">This Gofer is not connected to a JupyterHub, so there is no sign-in here. Open your assignment from your course: its page shows your submissions and their results.</p>`;
      res.status(404).type('html').send(learnerDocument('Your submissions', body));
      return;
    }
    if (!who) {
      res.redirect(302, `${deps.prefix}login?next=${encodeURIComponent(`${deps.prefix}me`)}`);
      return;
    }
    const view = await mine(who.name);
    const body = html`<p id="identity">Signed in to JupyterHub as <b id="hub-user">${who.name}</b>.</p>
<p>Scores are points out of each assignment's points. What edX shows is on each assignment's page in the course.</p>
${submissionsSection(view)}`;
    res.type('html').send(learnerDocument(`Submissions of ${who.name}`, body, { statusUrl: 'me/status', done: view.done }));
  });
  router.get('/me/status', async (req: Request, res: Response) => {
    const who = await deps.identity(req);
    if (!who) {
      res.status(401).json({ error: 'Log in to JupyterHub first, then reload the page.' });
      return;
    }
    const now = deps.now();
    res.set('Cache-Control', 'no-store').json(statusJson(await mine(who.name), now));
  });
  return router;
}
