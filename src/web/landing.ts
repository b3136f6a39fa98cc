import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type Router } from 'express';
import type { Config } from '../config/schema.js';
import type { Health } from '../grading/health.js';
import { html } from '../lib/html.js';
import { page } from '../lib/page.js';

/** Gofer's own docs folder (docs/ beside dist/ in a clone or an installed package). */
const DOCS_DIR = fileURLToPath(new URL('../../../docs/', import.meta.url));

export interface LandingDeps {
  config: Pick<Config, 'courses'>;
  /** The hub service prefix the submit buttons post to. */
  prefix: string;
  /** This process's health, as /health reports it. */
  health: () => Promise<Health>;
  /** Where platforms reach LTI, when it is on. */
  ltiUrl?: string;
  /** The dev platform started beside Gofer (development only). */
  devPlatformUrl?: string;
}

/**
 * `GET /`: what this Gofer serves (courses, where buttons and platforms reach it), its health, the
 * docs, and in development the dev platform. `GET /docs/NAME.md`: the docs, as plain text.
 */
export function landingRouter(deps: LandingDeps): Router {
  const router = express.Router();
  const docs = docNames();
  router.get('/', async (_req, res) => {
    const health = await deps.health();
    const assignments = deps.config.courses.reduce((n, c) => n + c.assignments.length, 0);
    const jobs = health.jobs;
    const body = html`<p id="what">This Gofer grades Jupyter notebooks for ${deps.config.courses.length} course(s) with ${assignments} assignment(s)${deps.config.courses.length ? html`: ${deps.config.courses.map((c, i) => html`${i ? ', ' : ''}<b>${c.id}</b>`)}` : ''}.</p>
${deps.devPlatformUrl ? html`<p id="dev-platform"><a href="${deps.devPlatformUrl}/">Try it on the development platform</a> (it behaves like edX): launch an assignment as a learner or as an instructor.</p>` : ''}
<h2>Health</h2>
<ul id="health">
<li>Status: <b>${health.ok ? 'ok' : 'not ok'}</b> (<a href="/health">/health</a> gives the details as JSON)</li>
<li>Database: ${health.database}</li>
<li>Docker engine: ${health.engine.state}${health.engine.state === 'not used' ? ' (this process grades nothing)' : ''}</li>
${jobs ? html`<li>Grading jobs: ${jobs.waiting} waiting, ${jobs.backoff} in back-off, ${jobs.running} running</li>` : ''}
${health.workers ? html`<li>Grading processes with a recent heartbeat: ${health.workers.length}</li>` : ''}
</ul>
<h2>Where Gofer is reached</h2>
<ul>
<li>Submit buttons in JupyterHub post to <code>${deps.prefix}</code>; the REST API is <code>/api/v1/submissions</code>.</li>
<li>${deps.ltiUrl ? html`LTI 1.3: login <code>${deps.ltiUrl}/lti/login</code>, launch <code>${deps.ltiUrl}/lti</code>, keyset <code>${deps.ltiUrl}/lti/keys</code>.` : 'LTI is off: no platform is configured.'}</li>
</ul>
<h2>Docs</h2>
<ul id="docs">${docs.map((d) => html`<li><a href="/docs/${d}">${d}</a></li>`)}</ul>`;
    res.status(health.ok ? 200 : 503).type('html').send(page('Gofer', body));
  });
  router.get('/docs/:name', (req, res, next) => {
    const name = String(req.params.name);
    // only the files listed at start: a name never becomes a path of its own
    if (!docs.includes(name)) return next();
    res.type('text/plain; charset=utf-8').sendFile(path.join(DOCS_DIR, name));
  });
  return router;
}

function docNames(): string[] {
  try {
    return readdirSync(DOCS_DIR)
      .filter((n) => /^[a-z0-9-]+\.md$/.test(n))
      .sort();
  } catch {
    return [];
  }
}
