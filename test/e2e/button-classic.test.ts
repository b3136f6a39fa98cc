import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { loadConfig } from '../../src/config/load.js';
import { createDb } from '../../src/db/knex.js';
import { addClassicCell, installButton, openClassicNotebook, startButtonHub, type InstalledButton } from '../helpers/button.js';
import { requireEngine } from '../helpers/engine.js';
import { freePort, requireJupyterHub, type Hub } from '../helpers/hub.js';
import { ARTIFACTS, launchBrowser } from '../helpers/lti.js';
import { waitFor } from '../helpers/process.js';
import { EXAMPLE_TESTS, ROOT, writeConfig } from '../helpers/service.js';

/**
 * The Submit button in the classic Notebook (Debian's notebook 6.4), for real: extensions/jupyter_gofer
 * installed with pip into a prefix, a real JupyterHub spawning the learner's single-user server
 * with it, Gofer as the hub's managed service grading in the real Docker engine, and Chromium
 * clicking the button. The server extension sends the saved file with the server's own hub token.
 */
const LEARNER = 'ada';
/** A learner whose server is jupyter_server (what JupyterLab 4 and Notebook 7 run on), not the classic Notebook. */
const SERVER_LEARNER = 'bob';
const POINTS = 3;
const EXAMPLE = path.join(ROOT, 'config/example/lab01/lab01.ipynb');

describe('The Submit button in the classic Notebook 6 under a real JupyterHub (pip-installed extension, real engine, Chromium)', function () {
  this.timeout(240_000);
  let hub: Hub | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let installed: InstalledButton;
  let home: string;
  let goferConfig: string;

  before(async () => {
    requireJupyterHub();
    await requireEngine();
    installed = await installButton();
    const goferPort = await freePort();
    const { file, dir } = writeConfig({
      server: { host: '127.0.0.1', port: goferPort },
      queue: { workers: 1, pollMs: 100 },
      courses: [
        {
          id: '8x',
          instructors: ['prof'],
          assignments: [
            { id: 'lab01', aliases: ['1'], section: '1', tests: EXAMPLE_TESTS, files: ['data.csv'], policy: 'gofer', points: POINTS, timeoutSeconds: 60 },
            { id: 'closed', tests: EXAMPLE_TESTS, due: '2020-01-01T00:00:00Z', late: 'reject' },
          ],
        },
      ],
    });
    goferConfig = file;
    const example = readFileSync(EXAMPLE, 'utf8');
    const closed = JSON.parse(example);
    closed.metadata.assignment = 'closed';
    const started = await startButtonHub({ dir, goferConfig: file, goferPort, learners: [LEARNER, SERVER_LEARNER], singleUserApps: { [SERVER_LEARNER]: 'jupyter_server.serverapp.ServerApp' }, notebooks: { 'lab01.ipynb': example, 'closed.ipynb': JSON.stringify(closed, null, 1) } }, installed);
    hub = started.hub;
    home = started.homes[LEARNER]!;
    browser = await launchBrowser();
    page = await (await browser.newContext()).newPage();
    page.on('dialog', (d) => void d.accept()); // "leave page?" prompts between notebooks
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && hub) process.stderr.write(`\n--- last lines of ${hub.logFile} ---\n${hub.tail(80)}\n`);
  });

  after(async () => {
    await browser?.close();
    const result = await hub?.stop();
    if (result?.leftovers.length) process.stderr.write(`killed after the hub stopped: ${result.leftovers.join(', ')}\n`);
  });

  it('the learner logs in to the hub; the hub spawns a classic Notebook 6 server whose toolbar has the Submit button', async () => {
    await openClassicNotebook(page, hub!, LEARNER, 'lab01.ipynb');
    expect(new URL(page.url()).pathname).to.equal(`/user/${LEARNER}/notebooks/lab01.ipynb`);
    expect((await page.textContent('#gofer-submit'))?.trim()).to.equal('Submit');
    const version = await page.evaluate(() => (window as unknown as { Jupyter: { version: string } }).Jupyter.version);
    expect(version).to.match(/^6\./);
  });

  it('a click saves the notebook, sends it, shows "received" against the time limit, then the score on the assignment\'s scale with per-test feedback and what edX is sent', async () => {
    // an edit the learner has not saved: the button saves it before sending
    await addClassicCell(page, '# submitted by the button test');
    await page.click('#gofer-submit');
    const dialog = page.locator('.gofer-dialog');
    await dialog.locator('[data-gofer-state="received"]').waitFor({ timeout: 30_000 });
    expect(await dialog.textContent()).to.match(/Received at .*(Waiting|Grading): \d+ s of the 60 s time limit\./s);
    await dialog.locator('[data-gofer-state="graded"]').waitFor({ timeout: 90_000 });
    await page.screenshot({ path: path.join(ARTIFACTS, 'button-classic-graded.png') });
    expect(await dialog.locator('.gofer-headline').textContent()).to.equal(`Score: ${POINTS} / ${POINTS} points (100%)`);
    expect(await dialog.locator('.gofer-tests li').allTextContents()).to.deep.equal(['q1: passed (1 / 1)', 'q2: passed (1 / 1)']);
    expect(await dialog.textContent()).to.include(`Your latest graded submission counts. edX is sent this one: ${POINTS} / ${POINTS} points (100%).`);
  });

  it("the notebook in Gofer's database is the saved file's bytes (the unsaved edit included), owned by the hub user", async () => {
    const saved = readFileSync(path.join(home, 'lab01.ipynb'), 'utf8');
    expect(saved).to.include('# submitted by the button test');
    const db = createDb(loadConfig(goferConfig, {}));
    try {
      const rows = await db('submissions').join('submission_notebooks', 'submission_notebooks.submission_id', 'submissions.id').select('submissions.owner', 'submissions.assignment', 'submission_notebooks.notebook');
      expect(rows.map((r) => [r.owner, r.assignment])).to.deep.equal([[LEARNER, 'lab01']]);
      // the JSON document itself, byte for byte: the file's final newline is whitespace after it, as in {"nb": <file>}
      expect(saved.endsWith('}\n')).to.equal(true);
      expect(rows[0].notebook).to.equal(saved.slice(0, -1));
    } finally {
      await db.destroy();
    }
  });

  it('a closed assignment: the dialog says so in a short sentence with what to do, and nothing is stored', async () => {
    await page.keyboard.press('Escape');
    await openClassicNotebook(page, hub!, LEARNER, 'closed.ipynb', false);
    await page.click('#gofer-submit');
    const error = page.locator('.gofer-dialog [data-gofer-state="error"]');
    await error.waitFor({ timeout: 30_000 });
    expect(await error.textContent()).to.equal('The deadline for closed (2020-01-01 00:00 UTC) has passed; late submissions are not accepted. Ask your course staff if you think this is wrong.');
    const db = createDb(loadConfig(goferConfig, {}));
    try {
      expect((await db('submissions').where({ assignment: 'closed' })).length).to.equal(0);
    } finally {
      await db.destroy();
    }
  });

  it("under jupyter_server (JupyterLab's server) the extension's handlers submit the saved file and relay the graded result, with the user's token", async () => {
    const token = await hub!.userWithToken(SERVER_LEARNER);
    const auth = { Authorization: `token ${token}` };
    const started = await fetch(`${hub!.url}/hub/api/users/${SERVER_LEARNER}/server`, { method: 'POST', headers: auth });
    expect([201, 202], await started.text()).to.include(started.status);
    const base = `${hub!.url}/user/${SERVER_LEARNER}/`;
    const app = await waitFor('the jupyter_server single-user server', async () => {
      const res = await fetch(`${base}api/status`, { headers: auth }).catch(() => undefined);
      return res?.status === 200 ? res.headers.get('server') ?? 'answering' : undefined;
    }, 60_000, 300);
    expect(app).to.be.a('string');
    const version = (await (await fetch(`${base}api`, { headers: auth })).json()) as { version: string };
    expect(version.version, 'jupyter_server 1.x or 2.x, not notebook 6').to.match(/^[12]\./);
    const submit = await fetch(`${base}gofer/submit`, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' }, body: JSON.stringify({ path: 'lab01.ipynb' }) });
    const receipt = (await submit.json()) as { id: string; error?: string };
    expect(submit.status, receipt.error).to.equal(200);
    const view = await waitFor('the submission to be graded, through the extension', async () => {
      const res = await fetch(`${base}gofer/submissions/${receipt.id}`, { headers: auth });
      const v = (await res.json()) as { status: string; owner: string; grade: { text: string } | null };
      return ['queued', 'grading'].includes(v.status) ? undefined : v;
    }, 90_000, 300);
    expect(view).to.include({ status: 'graded', owner: SERVER_LEARNER });
    expect(view.grade?.text).to.equal(`${POINTS} / ${POINTS} points (100%)`);
    const missing = await fetch(`${base}gofer/submit`, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' }, body: JSON.stringify({ path: 'nothing-here.ipynb' }) });
    expect(missing.status).to.equal(404);
    expect(((await missing.json()) as { error: string }).error).to.equal('There is no saved notebook at nothing-here.ipynb. Save it first.');
  });
});
