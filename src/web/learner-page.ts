import express, { type Router } from 'express';
import type { Identity } from '../submissions/identity.js';
import type { SubmissionStore } from '../submissions/store.js';
import { html } from '../lib/html.js';
import { page } from '../lib/page.js';
import { testFeedback } from './fragments.js';

/**
 * `{prefix}me`: the signed-in learner's submissions with status, score and per-test feedback
 * (hidden tests withheld). Browsers without a session are sent to the hub login.
 */
export function learnerPageRouter(deps: { submissions: SubmissionStore; identity: (req: express.Request) => Promise<Identity | undefined>; prefix: string }): Router {
  const router = express.Router();
  router.get('/me', async (req, res) => {
    const who = await deps.identity(req);
    if (!who) {
      res.redirect(302, `${deps.prefix}login?next=${encodeURIComponent(`${deps.prefix}me`)}`);
      return;
    }
    const subs = (await deps.submissions.list({ owner: who.name })).reverse().slice(0, 50);
    const rows = await Promise.all(
      subs.map(async (s) => {
        const tests = (await deps.submissions.tests(s.id)).filter((t) => !t.hidden);
        const score = s.status === 'graded' ? html`${s.points}/${s.maxPoints}` : '';
        return html`<tr><td>${s.course} / ${s.assignment}</td><td>${new Date(s.receivedAt).toISOString()}</td>
<td class="status-${s.status}">${s.status}</td><td>${score}</td><td>${s.message ?? ''}${testFeedback(tests, true)}</td></tr>`;
      }),
    );
    const table = subs.length
      ? html`<table><thead><tr><th>Assignment</th><th>Received</th><th>Status</th><th>Score</th><th>Feedback</th></tr></thead><tbody>${rows}</tbody></table>`
      : html`<p>You have not submitted anything yet.</p>`;
    res.type('html').send(page(`Submissions of ${who.name}`, table));
  });
  return router;
}
