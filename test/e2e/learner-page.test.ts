import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { devPlatformConfig, toolEndpoints } from '../../src/dev-platform/demo.js';
import { startDevPlatform, type DevComponent, type DevPlatform, type DevUser } from '../../src/dev-platform/index.js';
import { requireEngine } from '../helpers/engine.js';
import { ARTIFACTS, launchBrowser } from '../helpers/lti.js';
import { freePort, spawnGofer, waitFor, type GoferProcess } from '../helpers/process.js';
import { EXAMPLE_TESTS, ROOT, writeConfig } from '../helpers/service.js';

/**
 * The learner's assignment page after an LTI launch, in Chromium: it follows a submission from
 * received to its score without reloading, says what edX will show and why a grade is not sent,
 * tells the truth about who is signed in, fits a phone, and answers refused uploads with pages
 * that lead back. Gofer runs with no JupyterHub here (identities come from the launch's `sub`).
 */
const COURSE_KEY = 'course-v1:GoferX+Page+2026';
const LAB = 'block-v1:GoferX+Page+2026+type@lti_consumer+block@lab01';
const EXAMPLE = readFileSync(path.join(ROOT, 'config/example/lab01/lab01.ipynb'), 'utf8');
const HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">';

function variant(i: number, opts: { square?: string } = {}): string {
  const nb = JSON.parse(EXAMPLE);
  if (opts.square) nb.cells[2].source = opts.square;
  nb.cells.push({ cell_type: 'code', id: `v${i}`, metadata: {}, execution_count: null, outputs: [], source: `variant = ${i}` });
  return JSON.stringify(nb);
}

describe('the learner page in a real browser (dev platform, real engine)', function () {
  this.timeout(300_000);
  let browser: Browser;
  let platform: DevPlatform;
  let gofer: GoferProcess | undefined;
  let toolUrl: string;
  let dir: string;
  let file: string;
  const users: DevUser[] = [
    { username: 'ada', sub: 'sub-ada-page', name: 'Ada Lovelace', email: 'ada@example.edu', role: 'learner', sharePii: true },
    { username: 'eve', sub: 'sub-eve-page', name: 'Eve Hidden', email: 'eve@example.edu', role: 'learner', sharePii: false },
    { username: 'mal', sub: 'sub-mal-page', name: `${HOSTILE}Mallory`, email: 'mal@example.edu', role: 'learner', sharePii: true },
  ];
  const log = () => readFileSync(path.join(dir, 'gofer.log'), 'utf8').split('\n').slice(-30).join('\n');
  const shot = (page: Page, name: string) => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });

  before(async () => {
    await requireEngine();
    browser = await launchBrowser();
    const port = await freePort();
    toolUrl = `http://127.0.0.1:${port}`;
    const tool = { ...toolEndpoints(toolUrl), deepLinkLaunchUrl: `${toolUrl}/lti` };
    const components: DevComponent[] = [
      { usageKey: LAB, configId: 'cfg-page-lab01', clientId: 'client-page-lab01', name: 'Lab 01', weight: 3, graded: true, acceptGradesPastDue: true, custom: ['assignment=lab01'], agsMode: 'declarative', tool },
    ];
    platform = await startDevPlatform({ courseKey: COURSE_KEY, courseTitle: 'Page', components, users });
    ({ file, dir } = writeConfig({
      server: { host: '127.0.0.1', port, submissionsPerMinute: 3, maxNotebookMb: 1 },
      queue: { workers: 1, pollMs: 100, retryDelaySeconds: 1 },
      passback: { retryDelaySeconds: 0.2, pollMs: 100 },
      lti: { development: true, hubUserClaim: 'sub', platforms: [devPlatformConfig(platform, components)] },
      courses: [{ id: '8x', contexts: [COURSE_KEY], assignments: [{ id: 'lab01', tests: EXAMPLE_TESTS, files: ['data.csv'], points: 3, select: 'best', policy: 'otter', timeoutSeconds: 60 }] }],
    }));
    gofer = spawnGofer(['--config', file, 'serve'], path.join(dir, 'gofer.log'));
    await waitFor('gofer to answer /health', async () => (await fetch(`${toolUrl}/health`)).ok, 60_000);
  });

  after(async () => {
    gofer?.child.kill('SIGTERM');
    await gofer?.exited;
    await browser?.close();
    await platform?.stop();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') process.stderr.write(`\n--- gofer log ---\n${log()}\n`);
  });

  const launch = async (context: BrowserContext, user: string): Promise<Page> => {
    const page = await context.newPage();
    await page.goto(platform.launchUrl(user, LAB));
    await page.waitForURL(/\/app\/assignment\?l=/);
    await page.waitForLoadState('load');
    return page;
  };
  const choose = async (page: Page, notebook: string | Buffer, name: string) => {
    const p = path.join(dir, name);
    writeFileSync(p, notebook);
    await page.setInputFiles('#upload input[type=file]', p);
  };
  /** Every text the live region held, from now on, and every navigation of the page. */
  const watch = async (page: Page) => {
    let navigations = 0;
    page.on('framenavigated', (f) => {
      if (f === page.mainFrame()) navigations++;
    });
    await page.evaluate(() => {
      const w = window as unknown as { __status: string[] };
      const live = document.getElementById('status')!;
      w.__status = [live.textContent ?? ''];
      new MutationObserver(() => w.__status.push(live.textContent ?? '')).observe(live, { childList: true, characterData: true, subtree: true });
    });
    return {
      navigations: () => navigations,
      statuses: () => page.evaluate(() => (window as unknown as { __status: string[] }).__status),
    };
  };
  const newest = '#submissions > li.submission:first-child';

  it('follows a submission from received through grading to its score without reloading, in local times', async () => {
    const context = await browser.newContext({ timezoneId: 'America/Los_Angeles' });
    const page = await launch(context, 'ada');
    expect(await page.locator('main').count(), 'a main landmark').to.equal(1);
    expect(await page.locator('header').count(), 'a banner landmark').to.equal(1);
    expect(await page.getAttribute('#status', 'role')).to.equal('status');
    expect(await page.getAttribute('#status', 'aria-live')).to.equal('polite');
    expect(await page.textContent('#status')).to.equal('No submissions yet.');
    const seen = await watch(page);
    await choose(page, variant(1), 'ada1.ipynb');
    await page.click('#upload button');
    await page.waitForSelector('#notice.notice-accepted');
    expect(await page.textContent('#notice')).to.include('Your notebook was received');
    await page.waitForSelector(`${newest}[data-step=result] .score`, { timeout: 120_000 });
    expect(await page.textContent(`${newest} .score`)).to.equal('3 / 3 points (100%)');
    expect(seen.navigations(), 'the page never navigated').to.equal(0);
    const statuses = await seen.statuses();
    expect(statuses.some((s) => /Submission 1: (received|grading)/.test(s)), `live region went through received or grading: ${statuses.join(' | ')}`).to.equal(true);
    expect(statuses.at(-1)).to.equal('Submission 1: 3 / 3 points (100%).');
    // weights: q1 is worth 1 of 3 test points, q2 2 of 3, and the page says so
    expect(await page.textContent(`${newest} .weights`)).to.equal("Each test's weight is shown, out of 3 test points.");
    expect(await page.textContent(`${newest} .tests`)).to.include('weight 1/3').and.include('weight 2/3');
    // the received time is in the browser's zone (Los Angeles), not UTC
    const time = page.locator(`${newest} h3 time`);
    const iso = (await time.getAttribute('datetime'))!;
    const expected = await page.evaluate((d) => new Date(d).toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' }), iso);
    expect(await time.textContent()).to.equal(expected).and.not.include('UTC');
    expect(await page.evaluate(() => Intl.DateTimeFormat().resolvedOptions().timeZone)).to.equal('America/Los_Angeles');
    // edX: the score is sent, and the page says once what the gradebook will show
    await page.waitForFunction(() => document.querySelector('#submissions > li:first-child .passback')?.textContent === 'sent to edX', null, { timeout: 60_000 });
    expect(await page.textContent('#edx-total')).to.equal("edX's gradebook will show 3 / 3 points (100%): submission 1 counts (your best graded).");
    expect(platform.gradebook().find((g) => g.username === 'ada' && g.usageKey === LAB)?.published).to.equal(3);
    await shot(page, 'learner-page-graded');
    await context.close();
  });

  it('notices a duplicate upload, and says why a lower score is not sent to edX (best so far)', async () => {
    const context = await browser.newContext();
    const page = await launch(context, 'ada');
    await choose(page, variant(1), 'ada1-again.ipynb');
    await page.click('#upload button');
    await page.waitForSelector('#notice.notice-duplicate');
    expect(await page.textContent('#notice')).to.include('already received');
    await choose(page, variant(2, { square: 'def square(x):\n    return 0' }), 'ada2.ipynb');
    await page.click('#upload button');
    await page.waitForSelector('#notice.notice-accepted');
    await page.waitForFunction(
      () => {
        const li = document.querySelector('#submissions > li.submission:first-child') as HTMLElement | null;
        return li?.dataset.step === 'result' && /^Submission 2, received/.test(li.querySelector('h3')?.textContent ?? '');
      },
      null,
      { timeout: 120_000 },
    );
    expect(await page.textContent(`${newest} .score`)).to.equal('2 / 3 points (67%)');
    expect(await page.textContent(`${newest} .passback`)).to.equal('not sent to edX: your best so far is 3 / 3 points (100%)');
    expect(await page.textContent('#edx-total')).to.include('submission 1 counts');
    // the server-rendered page, reloaded, says the same
    await page.reload();
    expect(await page.textContent(`${newest} .passback`)).to.equal('not sent to edX: your best so far is 3 / 3 points (100%)');
    await context.close();
  });

  it('without the script, the page is complete and refused uploads are pages that lead back (choose a file, 422, 413, 429)', async () => {
    // the launch itself needs scripts (the platform's auto-submitting forms): launch, then open
    // the page in a browser with the same cookies and scripts off
    const launching = await browser.newContext();
    const launched = (await launch(launching, 'eve')).url();
    const context = await browser.newContext({ javaScriptEnabled: false, storageState: await launching.storageState() });
    await launching.close();
    const page = await context.newPage();
    await page.goto(launched);
    const assignment = page.url();
    // no PII shared: the page does not pretend to know a name, and there is no hub to name
    expect(await page.textContent('#identity')).to.equal('Signed in from the course (it does not share your name with Gofer).');
    const back = async () => {
      await Promise.all([page.waitForURL(/\/app\/assignment\?l=/), page.click('#back')]);
      expect(page.url().split('&')[0]).to.equal(assignment);
    };
    await Promise.all([page.waitForNavigation(), page.click('#upload button')]);
    expect(await page.textContent('h1')).to.equal('Not accepted');
    expect(await page.textContent('#problem')).to.include('choose your notebook file');
    await back();
    await choose(page, 'this is not a notebook', 'broken.ipynb');
    const [bad] = await Promise.all([page.waitForNavigation(), page.click('#upload button')]);
    expect(bad?.status()).to.equal(422);
    expect(await page.textContent('h1')).to.equal('Not accepted');
    await back();
    await choose(page, Buffer.alloc(1024 * 1024 + 10, 'x'), 'large.ipynb');
    const [large] = await Promise.all([page.waitForNavigation(), page.click('#upload button')]);
    expect(large?.status()).to.equal(413);
    expect(await page.textContent('#problem')).to.include('larger than 1 MB');
    await back();
    for (let i = 0; i < 3; i++) {
      await choose(page, variant(10 + i), `eve${i}.ipynb`);
      await Promise.all([page.waitForURL(/notice=accepted/), page.click('#upload button')]);
      expect(await page.textContent('#notice')).to.include('Your notebook was received');
      expect(await page.locator('#submissions > li.submission').count()).to.equal(i + 1);
    }
    // the notice is one of Gofer's own sentences, never what the address says
    await page.goto(`${assignment}&notice=constructor`);
    expect(await page.getAttribute('#notice', 'hidden')).to.equal('');
    expect(await page.textContent('#notice')).to.equal('');
    await choose(page, variant(13), 'eve3.ipynb');
    const [limited] = await Promise.all([page.waitForNavigation(), page.click('#upload button')]);
    expect(limited?.status()).to.equal(429);
    expect(await page.textContent('h1')).to.equal('Too many submissions');
    expect(await page.textContent('#problem')).to.match(/submitted 3 times in the last minute; wait \d+ s/);
    await shot(page, 'learner-page-429');
    await back();
    await context.close();
  });

  it('with the script, an empty or too large upload is a notice in the page', async () => {
    const context = await browser.newContext();
    const page = await launch(context, 'eve');
    const seen = await watch(page);
    await page.click('#upload button');
    expect(await page.textContent('#notice.notice-rejected')).to.include('choose your notebook file');
    expect(await page.getAttribute('#notice', 'role')).to.equal('alert');
    await choose(page, Buffer.alloc(1024 * 1024 + 10, 'x'), 'large2.ipynb');
    await page.click('#upload button');
    await page.waitForFunction(() => /larger than 1 MB/.test(document.getElementById('notice')?.textContent ?? ''));
    expect(seen.navigations()).to.equal(0);
    await context.close();
  });

  it('at 390 px wide there is no horizontal scroll, and learner-controlled text stays text', async () => {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
    const page = await launch(context, 'mal');
    // the name from the launch is the learner's own text
    expect(await page.textContent('#learner-name')).to.equal(`${HOSTILE}Mallory`);
    await choose(page, variant(20, { square: `def square(x):\n    return ${JSON.stringify(HOSTILE + 'x'.repeat(300))}` }), 'mal.ipynb');
    await page.click('#upload button');
    await page.waitForSelector(`${newest}[data-step=result]`, { timeout: 120_000 });
    // the failing test's message shows the notebook's value, as text: inserted by the script
    const message = (await page.textContent(`${newest} .tests`)) ?? '';
    expect(message).to.include('<script>window.__pwned=1</script>');
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).to.equal(undefined);
    expect(await page.locator('main script, main img').count()).to.equal(0);
    const widths = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
    expect(widths.scroll, `page is ${widths.scroll} px wide in a ${widths.client} px window`).to.be.at.most(widths.client);
    await shot(page, 'learner-page-390');
    // and as the server renders it
    await page.reload();
    expect(((await page.textContent(`${newest} .tests`)) ?? '')).to.include('<script>window.__pwned=1</script>');
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).to.equal(undefined);
    await context.close();
  });

  it('says who is signed in from the launch, never "JupyterHub" without a hub, and has no "Open in JupyterHub" without lti.hubLink', async () => {
    const context = await browser.newContext();
    const page = await launch(context, 'ada');
    expect(await page.textContent('#identity')).to.equal('Signed in from the course as Ada Lovelace.');
    expect(await page.textContent('body')).not.to.include('Signed in to JupyterHub');
    expect(await page.textContent('body')).not.to.include('sub-ada-page');
    expect(await page.locator('#open-hub').count()).to.equal(0);
    // each submission is its own labelled region, named by its number
    const names = await page.locator('#submissions > li.submission').evaluateAll((lis) => lis.map((li) => document.getElementById(li.getAttribute('aria-labelledby')!)?.textContent ?? ''));
    expect(names.length).to.equal(2);
    expect(names[0]).to.match(/^Submission 2, received/);
    expect(names[1]).to.match(/^Submission 1, received/);
    await context.close();
  });

  it('a notebook submitted elsewhere (the API, as a Jupyter button does) appears when the learner comes back to the page', async () => {
    const context = await browser.newContext();
    const page = await launch(context, 'ada');
    const seen = await watch(page);
    expect(await page.getAttribute('main', 'data-done')).to.equal('true');
    const token = await new Promise<string>((resolve, reject) =>
      execFile('node', [path.join(ROOT, 'bin/gofer.js'), '--config', file, 'token', 'create', 'sub-ada-page'], (err, out) => (err ? reject(err) : resolve(out.trim()))),
    );
    const nb = JSON.parse(variant(30));
    nb.metadata = { ...nb.metadata, assignment: 'lab01' };
    const res = await fetch(`${toolUrl}/api/v1/submissions`, { method: 'POST', headers: { authorization: `token ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ nb }) });
    expect(res.status, await res.text()).to.equal(202);
    await page.evaluate(() => window.dispatchEvent(new Event('focus')));
    await page.waitForFunction(
      () => {
        const li = document.querySelector('#submissions > li.submission:first-child') as HTMLElement | null;
        return li?.dataset.step === 'result' && /^Submission 3, received/.test(li.querySelector('h3')?.textContent ?? '');
      },
      null,
      { timeout: 120_000 },
    );
    expect(await page.textContent(`${newest} .score`)).to.equal('3 / 3 points (100%)');
    expect(seen.navigations()).to.equal(0);
    await context.close();
  });

  it("the status endpoint answers only the launching browser's own learner", async () => {
    const context = await browser.newContext();
    const page = await launch(context, 'ada');
    const statusUrl = new URL((await page.getAttribute('main', 'data-status-url'))!, page.url()).href;
    const own = await page.evaluate(async (u) => (await fetch(u)).json(), statusUrl);
    expect((own as { submissions: unknown[] }).submissions.length).to.equal(3);
    // the same address from another browser (no page session cookie) is refused
    const other = await fetch(statusUrl, { headers: { accept: 'application/json' } });
    expect(other.status).to.equal(403);
    expect(((await other.json()) as { error: string }).error).to.include('launch the assignment again');
    await context.close();
  });
});
