import express, { type Router } from 'express';
import type { Identity } from '../submissions/identity.js';
import type { SubmissionStore } from '../submissions/store.js';
import { esc, page } from './html.js';

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
        const feedback = tests
          .map((t) => `<li>${esc(t.name)}: ${t.passed ? 'passed' : 'failed'} (${esc(t.points)}/${esc(t.maxPoints)})${t.message ? `<pre>${esc(t.message)}</pre>` : ''}</li>`)
          .join('');
        const score = s.status === 'graded' ? `${esc(s.points)}/${esc(s.maxPoints)}` : '';
        return `<tr><td>${esc(s.course)} / ${esc(s.assignment)}</td><td>${esc(new Date(s.receivedAt).toISOString())}</td>
<td class="status-${esc(s.status)}">${esc(s.status)}</td><td>${score}</td><td>${esc(s.message ?? '')}<ul>${feedback}</ul></td></tr>`;
      }),
    );
    const table = subs.length
      ? `<table><thead><tr><th>Assignment</th><th>Received</th><th>Status</th><th>Score</th><th>Feedback</th></tr></thead><tbody>${rows.join('')}</tbody></table>`
      : '<p>You have not submitted anything yet.</p>';
    res.type('html').send(page(`Submissions of ${who.name}`, table));
  });
  return router;
}
