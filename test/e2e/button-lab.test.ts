import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { createDb } from '../../src/db/knex.js';
import { systemClock } from '../../src/lib/clock.js';
import { ApiTokenStore } from '../../src/submissions/identity.js';
import { installButton, SYSTEM_PYTHON } from '../helpers/button.js';
import { requireEngine } from '../helpers/engine.js';
import { ARTIFACTS, launchBrowser } from '../helpers/lti.js';
import { freePort, waitFor } from '../helpers/process.js';
import { EXAMPLE_TESTS, ROOT, startService } from '../helpers/service.js';

/**
 * The JupyterLab 4 Submit button in a browser: JupyterLab 4 is not installable from PyPI here, so
 * the front end is assembled from npm's @jupyterlab/* packages with the button's plugin
 * (test/lab-app, JupyterLab's example-app pattern) and served by Debian's jupyter_server 1.23 and
 * jupyterlab_server, with extensions/jupyter_gofer pip-installed. The server holds a Gofer API
 * token in JUPYTERHUB_API_TOKEN (Gofer takes its own tokens as it takes the hub's); Gofer grades
 * in the real Docker engine.
 */
const APP = path.join(ROOT, 'test/lab-app');
const POINTS = 3;

describe('The JupyterLab 4 Submit button in Chromium (a JupyterLab 4 front end from npm, jupyter_server, real engine)', function () {
  this.timeout(180_000);
  let svc: Awaited<ReturnType<typeof startService>> | undefined;
  let server: ChildProcess | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let root: string;
  let base: string;
  let log: string;
  const jupyterToken = randomBytes(16).toString('hex');

  before(async () => {
    if (!existsSync(path.join(APP, 'build/bundle.js'))) {
      throw new Error(`${APP}/build/bundle.js is missing: run npm ci && npm run build in test/lab-app (.ci/run does), after npm run build in extensions/jupyterlab-gofer`);
    }
    await requireEngine();
    const installed = await installButton();
    svc = await startService({
      workers: 1,
      overrides: {
        queue: { workers: 1, pollMs: 100 },
        courses: [{ id: '8x', instructors: [], assignments: [{ id: 'lab01', aliases: ['1'], section: '1', tests: EXAMPLE_TESTS, files: ['data.csv'], policy: 'gofer', points: POINTS, timeoutSeconds: 60 }] }],
      },
    });
    const db = createDb(svc.config);
    const goferToken = await new ApiTokenStore(db, systemClock).create('ada');
    await db.destroy();
    root = path.join(svc.dir, 'root');
    mkdirSync(root, { recursive: true });
    copyFileSync(path.join(ROOT, 'config/example/lab01/lab01.ipynb'), path.join(root, 'lab01.ipynb'));
    const port = await freePort();
    base = `http://127.0.0.1:${port}/`;
    log = path.join(svc.dir, 'lab-app.log');
    const fd = openSync(log, 'a');
    server = spawn(
      SYSTEM_PYTHON,
      [path.join(APP, 'main.py'), `--ServerApp.port=${port}`, '--ServerApp.ip=127.0.0.1', `--ServerApp.token=${jupyterToken}`, '--ServerApp.open_browser=False', `--ServerApp.root_dir=${root}`, '--allow-root'],
      {
        stdio: ['ignore', fd, fd],
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: svc.dir,
          PYTHONPATH: installed.site,
          JUPYTER_CONFIG_PATH: installed.config,
          JUPYTER_PATH: installed.data,
          GOFER_URL: svc.url,
          JUPYTERHUB_API_TOKEN: goferToken,
        },
      },
    );
    closeSync(fd);
    await waitFor('the JupyterLab app server', async () => (await fetch(`${base}api/status?token=${jupyterToken}`).catch(() => undefined))?.status === 200, 60_000, 300).catch((err: Error) => {
      throw new Error(`${err.message}\n${readFileSync(log, 'utf8').slice(-3000)}`);
    });
    browser = await launchBrowser();
    page = await (await browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage();
  });

  after(async () => {
    await browser?.close();
    server?.kill('SIGTERM');
    await svc?.stop();
  });

  it('opens the notebook in JupyterLab 4 with the Submit button on its toolbar', async () => {
    await page.goto(`${base}lab/tree/lab01.ipynb?token=${jupyterToken}`);
    await page.locator('.jp-NotebookPanel .gofer-submit').waitFor({ timeout: 90_000 });
    const version = await page.evaluate(() => (window as unknown as { jupyterapp?: { version: string } }).jupyterapp?.version);
    expect(version).to.match(/^4\./);
  });

  it("a click saves and submits; the dialog shows the score on the assignment's scale, each test, and which submission counts; Gofer stores the saved file", async () => {
    await page.locator('.jp-NotebookPanel .gofer-submit').click();
    const dialog = page.locator('.gofer-dialog');
    await dialog.locator('[data-gofer-state="graded"]').waitFor({ timeout: 90_000 });
    await page.screenshot({ path: path.join(ARTIFACTS, 'button-lab-graded.png') });
    expect(await dialog.locator('.gofer-headline').textContent()).to.equal(`Score: ${POINTS} / ${POINTS} points (100%)`);
    expect(await dialog.locator('.gofer-tests li').allTextContents()).to.deep.equal(['q1: passed (1 / 1)', 'q2: passed (1 / 1)']);
    expect(await dialog.textContent()).to.include('Your latest graded submission counts.');
    const saved = readFileSync(path.join(root, 'lab01.ipynb'), 'utf8');
    const db = createDb(svc!.config);
    try {
      const rows = await db('submissions').join('submission_notebooks', 'submission_notebooks.submission_id', 'submissions.id').select('submissions.owner', 'submission_notebooks.notebook');
      expect(rows.map((r) => r.owner)).to.deep.equal(['ada']);
      expect(rows[0].notebook).to.equal(saved.replace(/\n$/, ''));
    } finally {
      await db.destroy();
    }
  });
});
