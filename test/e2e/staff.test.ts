import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { loadConfig } from '../../src/config/load.js';
import { createDb, type Db } from '../../src/db/knex.js';
import { devPlatformConfig, toolEndpoints } from '../../src/dev-platform/demo.js';
import { startDevPlatform, type DevComponent, type DevPlatform, type DevUser } from '../../src/dev-platform/index.js';
import { formatGrade, gradeOf } from '../../src/grading/scale.js';
import { localText } from '../../src/lib/time-zone.js';
import { requireEngine } from '../helpers/engine.js';
import { ARTIFACTS, launchBrowser } from '../helpers/lti.js';
import { freePort, spawnGofer, waitFor, type GoferProcess } from '../helpers/process.js';
import { EXAMPLE_TESTS, ROOT, writeConfig } from '../helpers/service.js';

const RUN_A = 'course-v1:GoferX+Staff+A';
const RUN_B = 'course-v1:GoferX+Staff+B';
const block = (run: string, name: string) => `block-v1:${run.slice('course-v1:'.length)}+type@lti_consumer+block@${name}`;
const LAB_A = block(RUN_A, 'lab01');
const LAB_B = block(RUN_B, 'lab01');
const EXAMPLE = readFileSync(path.join(ROOT, 'config/example/lab01/lab01.ipynb'), 'utf8');

function variant(i: number, wrong = false): string {
  const nb = JSON.parse(EXAMPLE);
  if (wrong) nb.cells[2].source = 'def square(x):\n    return 0';
  nb.cells.push({ cell_type: 'code', id: `v${i}`, metadata: {}, execution_count: null, outputs: [], source: `variant = ${i}` });
  return JSON.stringify(nb);
}

/**
 * The instructor's view through a real `gofer serve`, the dev platform and Chromium: the course
 * overview's counts and charts (their SVG bars checked against the database), the grades table
 * with names, emails and the assignment's scale, its filters, sorting and server-side pages; and
 * course B's staff, launched from another course run, see none of course A.
 */
describe('Staff pages: course overview, charts and grades table, in a real browser (real engine)', function () {
  this.timeout(300_000);
  let browser: Browser;
  let platform: DevPlatform;
  let gofer: GoferProcess | undefined;
  let toolUrl: string;
  let file: string;
  let dir: string;
  let db: Db;
  const users: DevUser[] = [
    { username: 'ada', sub: 'sub-ada', name: 'Ada Lovelace', email: 'ada@example.edu', role: 'learner', sharePii: true },
    { username: 'bob', sub: 'sub-bob', name: 'Bob Babbage', email: 'bob@example.edu', role: 'learner', sharePii: true },
    { username: 'prof', sub: 'sub-prof', name: 'Grace Hopper', email: 'prof@example.edu', role: 'staff', sharePii: true },
    { username: 'other', sub: 'sub-other', name: 'Other Prof', email: 'other@example.edu', role: 'staff', sharePii: true },
  ];

  before(async () => {
    await requireEngine();
    browser = await launchBrowser();
    const port = await freePort();
    toolUrl = `http://127.0.0.1:${port}`;
    const tool = toolEndpoints(toolUrl);
    const components: DevComponent[] = [LAB_A, LAB_B].map((usageKey, i) => ({
      usageKey, configId: `cfg-${i}`, clientId: `client-${i}`, name: `Lab ${i}`, weight: 3, graded: true, acceptGradesPastDue: true, custom: ['assignment=lab01'], agsMode: 'declarative', tool,
    }));
    platform = await startDevPlatform({ courseKey: RUN_A, courseTitle: 'A', runs: [{ key: RUN_B, title: 'B' }], components, users });
    ({ file, dir } = writeConfig({
      server: { host: '127.0.0.1', port, submissionsPerMinute: 100 },
      queue: { workers: 1, pollMs: 100 },
      passback: { retryDelaySeconds: 0.2, pollMs: 100 },
      defaultCourse: 'a',
      lti: { development: true, hubUserClaim: 'sub', platforms: [devPlatformConfig(platform, components)] },
      courses: [
        // course a shows times in New York's zone; its due date, written without an offset, is read there (2099-01-01T00:00Z)
        { id: 'a', contexts: [RUN_A], instructors: ['prof-hub'], timeZone: 'America/New_York', assignments: [{ id: 'lab01', tests: EXAMPLE_TESTS, files: ['data.csv'], points: 3, timeoutSeconds: 60, due: '2098-12-31 19:00' }] },
        { id: 'b', contexts: [RUN_B], assignments: [{ id: 'lab01', tests: EXAMPLE_TESTS, files: ['data.csv'], points: 3, timeoutSeconds: 60 }] },
      ],
    }));
    db = createDb(loadConfig(file, {}));
    gofer = spawnGofer(['--config', file, 'serve'], path.join(dir, 'gofer.log'));
    await waitFor('gofer to answer /health', async () => (await fetch(`${toolUrl}/health`)).ok, 60_000);

    // two learners of course A submit through the assignment page and are graded for real
    for (const [who, wrong] of [['ada', false], ['bob', true]] as const) {
      const page = await browser.newPage();
      await launch(page, who, LAB_A);
      const p = path.join(dir, `${who}.ipynb`);
      writeFileSync(p, variant(who.length, wrong));
      await page.setInputFiles('#upload input[type=file]', p);
      // the page's script posts the upload in place (no navigation): wait for Gofer's answer
      const [answer] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/app/submit'), page.click('#upload button')]);
      expect(answer.status(), await answer.text()).to.equal(202);
      await page.close();
    }
    await waitFor('both learners to be graded and their grades sent', async () => Number((await db('passbacks').where({ course: 'a', status: 'sent' }).count({ n: '*' }).first())!.n) === 2, 150_000, 300);
  });

  after(async () => {
    gofer?.child.kill('SIGTERM');
    await gofer?.exited;
    await db?.destroy();
    await browser?.close();
    await platform?.stop();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') process.stderr.write(`\n--- gofer log ---\n${readFileSync(path.join(dir, 'gofer.log'), 'utf8').split('\n').slice(-30).join('\n')}\n`);
  });

  async function launch(page: Page, user: string, usageKey: string): Promise<void> {
    await page.goto(platform.launchUrl(user, usageKey));
    await page.waitForLoadState('networkidle');
  }
  const openOverview = async (user: string, usageKey = LAB_A): Promise<Page> => {
    const page = await browser.newPage();
    await launch(page, user, usageKey);
    await Promise.all([page.waitForNavigation(), page.click('#staff-overview')]);
    return page;
  };
  const bars = (page: Page, chart: string) =>
    page.$$eval(`#${chart} rect.bar`, (rs) => rs.map((r) => ({ label: r.getAttribute('data-label'), value: Number(r.getAttribute('data-value')), height: Number(r.getAttribute('height')) })));

  it('the overview counts each assignment and draws the score histogram, per-test pass rates and submissions over time as SVG', async () => {
    const page = await openOverview('prof');
    expect(await page.textContent('h1')).to.equal('Course a: overview');
    const row = page.locator('tr.assignment-counts[data-assignment="lab01"]');
    expect(await row.locator('.submitted').textContent()).to.equal('2');
    expect(await row.locator('.learners').textContent()).to.equal('2');
    expect(await row.locator('.graded').textContent()).to.equal('2');
    expect(await row.locator('.failed').textContent()).to.equal('0');
    expect(await row.locator('.waiting').textContent()).to.equal('0');
    expect(await row.locator('.pb-sent').textContent()).to.equal('2');
    expect(await row.locator('.pb-refused').textContent()).to.equal('0');

    // the histogram's bars are the learners' scores as the database holds them, in tenths
    const scores = (await db('submissions').where({ course: 'a', status: 'graded' }).select('score')).map((r) => Number(r.score));
    expect(scores).to.have.length(2);
    const expected = new Array<number>(10).fill(0);
    for (const s of scores) expected[Math.min(9, Math.floor(s * 10))]! += 1;
    const hist = await bars(page, 'score-histogram');
    expect(hist.map((b) => b.value)).to.deep.equal(expected);
    expect(hist[9]).to.include({ label: '90–100%', value: 1 }); // ada's notebook is right
    const tallest = Math.max(...hist.map((b) => b.height));
    for (const b of hist) expect(b.height).to.be.closeTo((b.value / Math.max(...expected)) * tallest, 0.2);

    // per-test pass rates from the latest results' tests: bob's wrong square fails its test
    const tests = await db('result_tests').select('name', 'passed');
    const names = [...new Set(tests.map((t) => t.name as string))];
    const rates = await bars(page, 'test-pass-rates');
    expect(rates.map((r) => r.label)).to.have.members(names);
    for (const r of rates) {
      const of = tests.filter((t) => t.name === r.label);
      expect(r.value).to.be.closeTo((100 * of.filter((t) => Boolean(t.passed)).length) / of.length, 0.1);
    }
    expect(rates.some((r) => r.value === 50)).to.equal(true);

    // two submissions within this hour; the due date (2099) is after the last bar
    const time = await bars(page, 'submissions-over-time');
    expect(time.reduce((n, b) => n + b.value, 0)).to.equal(2);
    expect(await page.locator('#submissions-over-time line.marker').count()).to.equal(1);
    // the text alternative says the same as the bars
    expect(await page.locator('#score-histogram table.chart-data tbody tr').count()).to.equal(10);
    expect(await page.getAttribute('#score-histogram svg', 'role')).to.equal('img');
    await page.screenshot({ path: path.join(ARTIFACTS, 'staff-overview.png'), fullPage: true });
    await page.close();
  });

  it('the grades table shows names, emails and scores on the scale; filters, sorts and pages on the server', async () => {
    const page = await openOverview('prof');
    const ada = page.locator('tr.grade-row', { hasText: 'Ada Lovelace' });
    expect(await ada.locator('.email').textContent()).to.equal('ada@example.edu');
    expect(await ada.locator('.score').textContent()).to.equal('3 / 3 points (100%)');
    expect(await ada.locator('.passback').textContent()).to.equal('sent');
    const received = (await ada.locator('.received time').getAttribute('datetime'))!;
    expect(received).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    // on the course's wall clock (New York), the zone named
    expect(await ada.locator('.received time').textContent()).to.equal(`${localText(Date.parse(received), 'America/New_York')} America/New_York`);
    expect(await page.locator('tr.grade-row').count()).to.equal(2);

    // filter by learner (a part of the email), then by status
    await page.fill('#filters input[name=learner]', 'bob@');
    await Promise.all([page.waitForNavigation(), page.click('#filters button')]);
    expect(await page.locator('tr.grade-row').count()).to.equal(1);
    expect(await page.locator('tr.grade-row .learner').textContent()).to.include('Bob Babbage');
    expect(await page.textContent('#grades-count')).to.equal('1 row; page 1 of 1.');
    await page.fill('#filters input[name=learner]', '');
    await page.selectOption('#filters select[name=status]', 'failed');
    await Promise.all([page.waitForNavigation(), page.click('#filters button')]);
    expect(await page.locator('tr.grade-row').count()).to.equal(0);
    await page.selectOption('#filters select[name=status]', '');
    await page.selectOption('#filters select[name=late]', 'yes');
    await Promise.all([page.waitForNavigation(), page.click('#filters button')]);
    expect(await page.locator('tr.grade-row').count()).to.equal(0);
    await page.selectOption('#filters select[name=late]', '');
    await page.selectOption('#filters select[name=passback]', 'sent');
    await Promise.all([page.waitForNavigation(), page.click('#filters button')]);
    expect(await page.locator('tr.grade-row').count()).to.equal(2);

    // sorting by score, both ways
    await Promise.all([page.waitForNavigation(), page.click('a.sort[data-sort=score]')]);
    const order = async () => page.$$eval('tr.grade-row .learner a', (as) => as.map((a) => a.textContent));
    const up = await order();
    await Promise.all([page.waitForNavigation(), page.click('a.sort[data-sort=score]')]);
    expect(await order()).to.deep.equal([...up].reverse());
    expect(up[0]).to.equal('Bob Babbage');

    // a page past the last is empty, and a bad value is refused by name
    const url = new URL(page.url());
    url.searchParams.set('page', '2');
    await page.goto(url.href);
    expect(await page.locator('tr.grade-row').count()).to.equal(0);
    expect(await page.locator('#prev-page').count()).to.equal(1);
    url.searchParams.set('status', 'bogus');
    const res = await page.goto(url.href);
    expect(res!.status()).to.equal(400);
    expect(await page.textContent('body')).to.include('"status" must be one of graded, failed, waiting; got "bogus".');
    await page.close();
  });

  it("course B's staff see none of course A's learners on their overview", async () => {
    const page = await openOverview('other', LAB_B);
    expect(await page.textContent('h1')).to.equal('Course b: overview');
    expect(await page.locator('tr.grade-row').count()).to.equal(0);
    expect(await page.textContent('body')).not.to.include('Ada Lovelace');
    expect(await page.locator('tr.assignment-counts[data-assignment="lab01"] .submitted').textContent()).to.equal('0');
    await page.close();
  });

  const adaSubmission = async () => (await db('submissions').where({ course: 'a', owner: 'sub-ada' }).first()).id as string;
  const openLearner = async (user: string, learner: string): Promise<Page> => {
    const page = await openOverview(user);
    await Promise.all([page.waitForNavigation(), page.locator('tr.grade-row .learner a', { hasText: learner }).click()]);
    return page;
  };

  it("a learner's page shows every submission with per-test results (hidden ones too), the time limit, the notebook and the passback history", async () => {
    const page = await openLearner('prof', 'Ada Lovelace');
    expect(await page.textContent('#who')).to.include('Ada Lovelace').and.include('ada@example.edu');
    const id = await adaSubmission();
    const section = page.locator(`section.submission[data-submission="${id}"]`);
    expect(await section.locator('.status').textContent()).to.equal('graded');
    expect(await section.locator('.score').textContent()).to.equal('3 / 3 points (100%)');
    expect(await section.locator('.time-limit').textContent()).to.equal('60 s');
    const result = await db('results').where({ submission_id: id }).orderBy('id', 'desc').first();
    const tests = await db('result_tests').where({ result_id: result.id }).orderBy('position');
    expect(tests.length).to.be.greaterThan(0);
    expect(await section.locator('tr.test').count()).to.equal(tests.length);
    expect(await section.locator('.hidden-test').count()).to.equal(tests.filter((t) => Boolean(t.hidden)).length);
    expect(await section.locator('tr.passback .state').allTextContents()).to.deep.equal(['sent']);
    const [download] = await Promise.all([page.waitForEvent('download'), section.locator('a.notebook').click()]);
    const nb = JSON.parse(readFileSync((await download.path())!, 'utf8'));
    expect(nb.cells.at(-1).source).to.equal('variant = 3');
    await page.screenshot({ path: path.join(ARTIFACTS, 'staff-learner.png'), fullPage: true });
    await page.close();
  });

  it('an override with a reason is sent to edX like any grade, shown as set by staff, and recorded with who did it', async () => {
    const page = await openLearner('prof', 'Bob Babbage');
    const id = (await db('submissions').where({ course: 'a', owner: 'sub-bob' }).first()).id as string;
    const section = page.locator(`section.submission[data-submission="${id}"]`);
    // a bad value is refused by name, nothing is recorded
    await section.locator('input[name=points]').fill('7');
    await section.locator('.override-form input[name=reason]').fill('regraded by hand');
    await Promise.all([page.waitForNavigation(), section.locator('button.set-grade').click()]);
    expect(await page.textContent('body')).to.include('Points must be a number from 0 to 3; got "7".');
    expect(Number((await db('staff_actions').count({ n: '*' }).first())!.n)).to.equal(0);
    await page.goBack();
    await section.locator('input[name=points]').fill('2.5');
    await section.locator('.override-form input[name=reason]').fill('q1 accepted after appeal');
    await Promise.all([page.waitForNavigation(), section.locator('button.set-grade').click()]);
    expect(await section.locator('.score').textContent()).to.equal('2.5 / 3 points (83%)');
    expect(await section.locator('.override').textContent()).to.equal('set by staff: q1 accepted after appeal');
    expect(await page.locator('#actions tr.action-override .actor').textContent()).to.equal('Grace Hopper');
    expect(await page.locator('#actions tr.action-override .reason').textContent()).to.equal('q1 accepted after appeal');
    const toEdx = () => platform.lineItems().find((l) => l.resourceLinkId === LAB_A)!.scores.filter((x) => x.userId === 'sub-bob').map((x) => x.scoreGiven);
    await waitFor('the override to reach edX', async () => toEdx().includes(2.5), 30_000, 300);
    await page.reload();
    const rows = section.locator('tr.passback');
    expect(await rows.count()).to.equal(2);
    expect(await rows.nth(1).textContent()).to.include('2.5 / 3 points (83%) (set by staff)').and.include('sent');

    // an excuse gives full points, and a resend sends the grade again; both are in the log
    await section.locator('select[name=kind]').selectOption('excuse');
    await section.locator('.override-form input[name=reason]').fill('medical leave');
    await Promise.all([page.waitForNavigation(), section.locator('button.set-grade').click()]);
    expect(await section.locator('.score').textContent()).to.equal('3 / 3 points (100%)');
    expect(await section.locator('.override').textContent()).to.equal('excused: medical leave');
    await waitFor('the excuse to reach edX', async () => toEdx().includes(3), 30_000, 300);
    const newest = () => db('passbacks').where({ submission_id: id }).orderBy('id', 'desc').first();
    await waitFor('the excuse to be marked sent', async () => (await newest())?.status === 'sent', 30_000, 200);
    const sentAt = Number((await newest()).sent_at);
    await Promise.all([page.waitForNavigation(), section.locator('button.resend').click()]);
    // sent again: edX answers that this score (same timestamp) is already there, which counts as delivered
    await waitFor('the resent score', async () => Number((await newest())?.sent_at) > sentAt, 30_000, 200);
    expect(await page.locator('#actions tr.action .what').allTextContents()).to.deep.equal(['resent the score', 'excused', 'set the grade']);
    await page.close();
  });

  it('regrade-all says how many it will regrade, then shows progress until done; the action is recorded', async () => {
    const before = Number((await db('results').count({ n: '*' }).first())!.n);
    const page = await openOverview('prof');
    await Promise.all([page.waitForNavigation(), page.locator('tr.assignment-counts[data-assignment="lab01"] a.regrade-all').click()]);
    expect(await page.getAttribute('#regrade-count', 'data-count')).to.equal('2');
    expect(await page.textContent('#confirm-regrade-all')).to.equal('Regrade 2 submissions');
    expect(await page.locator('#regrade-progress').count()).to.equal(0);
    await Promise.all([page.waitForNavigation(), page.click('#confirm-regrade-all')]);
    expect(await page.textContent('#regrade-progress')).to.match(/^(Regrading: [12] submissions? of lab01 still waiting|Done)/);
    await waitFor('the regrade to finish, as the page says', async () => {
      await page.reload();
      return (await page.textContent('#regrade-progress'))?.startsWith('Done: no submission of lab01 is waiting') ?? false;
    }, 120_000, 1000);
    expect(Number((await db('results').count({ n: '*' }).first())!.n)).to.equal(before + 2);
    const action = await db('staff_actions').where({ kind: 'regrade_all' }).first();
    expect(action).to.include({ course: 'a', assignment: 'lab01', count: 2, actor_name: 'Grace Hopper' });
    await Promise.all([page.waitForNavigation(), page.click('nav a')]);
    const shown = page.locator('#actions tr.action-regrade_all');
    expect(await shown.locator('.actor').textContent()).to.equal('Grace Hopper');
    expect(await shown.locator('.what').textContent()).to.equal('regraded the assignment (2 submissions)');
    await page.close();
  });

  it('a grade set by staff stands through regrades (shown beside it, nothing sent) until staff clear it; clearing sends the grade that counts', async () => {
    const page = await openLearner('prof', 'Bob Babbage');
    const id = (await db('submissions').where({ course: 'a', owner: 'sub-bob' }).first()).id as string;
    const section = page.locator(`section.submission[data-submission="${id}"]`);
    const toEdx = () => platform.lineItems().find((l) => l.resourceLinkId === LAB_A)!.scores.filter((x) => x.userId === 'sub-bob').map((x) => x.scoreGiven);
    const passbacks = async () => Number((await db('passbacks').where({ submission_id: id }).count({ n: '*' }).first())!.n);
    const results = async () => Number((await db('results').where({ submission_id: id }).count({ n: '*' }).first())!.n);
    // the excuse of the test above stands (regrade-all regraded it): regrade once more, by hand
    const [queued, resultsBefore, sentBefore] = [await passbacks(), await results(), platform.scoresReceived];
    await Promise.all([page.waitForNavigation(), section.locator('button.regrade').click()]);
    await waitFor('the regrade to be recorded', async () => (await results()) === resultsBefore + 1, 120_000, 300);
    await page.reload();
    const own = (await db('results').where({ submission_id: id }).orderBy('id', 'desc').first()) as { score: number };
    const ownText = formatGrade(gradeOf(own.score, 3));
    expect(await section.locator('.score').textContent()).to.equal('3 / 3 points (100%)');
    expect(await section.locator('.override').textContent()).to.equal('excused: medical leave');
    expect(await section.locator('.regraded').textContent()).to.equal(`Regraded: ${ownText}; the excuse, 3 / 3 points (100%), stands.`);
    expect((await db('submissions').where({ id }).first()).score).to.equal(1);
    // nothing new was queued for edX, and edX still holds the excuse
    await new Promise((r) => setTimeout(r, 1000));
    expect(await passbacks()).to.equal(queued);
    expect(platform.scoresReceived).to.equal(sentBefore);
    expect(toEdx()).to.deep.equal([3]);

    // clearing it: recorded with who and why; the grader's result is the grade again and is sent
    await section.locator('.clear-override-form input[name=reason]').fill('excuse entered for the wrong learner');
    await Promise.all([page.waitForNavigation(), section.locator('button.clear-override').click()]);
    expect(await section.locator('.score').textContent()).to.equal(ownText);
    expect(await section.locator('.override').count()).to.equal(0);
    expect(await section.locator('.clear-override-form').count()).to.equal(0);
    const cleared = page.locator('#actions tr.action-clear_override');
    expect(await cleared.locator('.actor').textContent()).to.equal('Grace Hopper');
    expect(await cleared.locator('.what').textContent()).to.equal('cleared the grade set by staff');
    expect(await cleared.locator('.reason').textContent()).to.equal('excuse entered for the wrong learner');
    await waitFor("the grader's grade to reach edX", async () => toEdx()[0] === gradeOf(own.score, 3).given, 30_000, 300);
    expect(platform.scoresReceived).to.equal(sentBefore + 1);

    // clearing again is refused by name; without the page's CSRF token nothing happens
    const l = new URL(page.url()).searchParams.get('l')!;
    const csrf = await section.locator('input[name=csrf]').first().getAttribute('value');
    const post = (body: Record<string, string>) =>
      page.evaluate(async ({ u, b }) => {
        const r = await fetch(u, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: b });
        return { status: r.status, text: await r.text() };
      }, { u: new URL('clear-override', page.url()).href, b: new URLSearchParams(body).toString() });
    const again = await post({ l, csrf: csrf!, submission: id, reason: 'twice' });
    expect(again.status).to.equal(400);
    expect(again.text).to.include('No grade set by staff stands on this submission.');
    const actions = Number((await db('staff_actions').count({ n: '*' }).first())!.n);
    expect((await post({ l, csrf: 'forged', submission: id, reason: 'x' })).status).to.equal(403);
    expect(Number((await db('staff_actions').count({ n: '*' }).first())!.n)).to.equal(actions);
    await page.close();
  });

  it("course B's staff cannot open or act on course A's learners and submissions", async () => {
    const page = await openOverview('other', LAB_B);
    const base = new URL(page.url());
    const l = base.searchParams.get('l')!;
    const id = await adaSubmission();
    const denied = await page.goto(new URL(`staff/learner?l=${encodeURIComponent(l)}&owner=sub-ada`, base).href);
    expect(denied!.status()).to.equal(403);
    expect(await page.textContent('body')).to.include('That learner has no submissions in your course.').and.not.include('Ada Lovelace');
    const res = await page.goto(new URL(`staff/notebook?l=${encodeURIComponent(l)}&submission=${id}`, base).href);
    expect(res!.status()).to.equal(403);
    // a form built with B's own launch and CSRF token, naming A's submission
    const csrf = await page.evaluate(async (u) => {
      const r = await fetch(u);
      const m = /name="csrf" value="([^"]+)"/.exec(await r.text());
      return m ? m[1] : null;
    }, new URL(`staff/regrade-all?l=${encodeURIComponent(l)}&assignment=lab01`, base).href);
    expect(csrf).to.be.a('string');
    const results = Number((await db('results').where({ submission_id: id }).count({ n: '*' }).first())!.n);
    for (const action of ['regrade', 'resend', 'override', 'clear-override']) {
      const status = await page.evaluate(
        async ({ u, body }) => (await fetch(u, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body })).status,
        { u: new URL(`staff/${action}`, base).href, body: new URLSearchParams({ l, csrf: csrf!, submission: id, kind: 'override', points: '0', reason: 'x' }).toString() },
      );
      expect(status, action).to.equal(403);
    }
    expect(Number((await db('results').where({ submission_id: id }).count({ n: '*' }).first())!.n)).to.equal(results);
    expect(Number((await db('staff_actions').where({ course: 'b' }).count({ n: '*' }).first())!.n)).to.equal(0);
    // and a learner of course A reaches no staff page at all
    const learner = await browser.newPage();
    await launch(learner, 'ada', LAB_A);
    const la = new URL(learner.url()).searchParams.get('l')!;
    // the learner's page shows the course's zone too (its script keeps it, with the reader's local time as the title), and the due date read in it
    const mine = learner.locator('#submissions time[data-fixed]').first();
    await learner.waitForSelector('#submissions time[data-fixed][data-local]');
    const at = Date.parse((await mine.getAttribute('datetime'))!);
    expect(await mine.textContent()).to.equal(`${localText(at, 'America/New_York')} America/New_York`);
    expect(await learner.textContent('body')).to.include('due 2098-12-31 19:00 America/New_York');
    const r = await learner.goto(new URL(`staff?l=${encodeURIComponent(la)}`, learner.url()).href);
    expect(r!.status()).to.equal(403);
    await learner.close();
    await page.close();
  });

  it('GET /api/v1/submissions lists a course for its instructors, a page at a time with passback states; a learner gets only their own', async () => {
    const token = (name: string) =>
      new Promise<string>((resolve, reject) => execFile('node', [path.join(ROOT, 'bin/gofer.js'), '--config', file, 'token', 'create', name], (err, out) => (err ? reject(err) : resolve(out.trim()))));
    const [prof, ada] = [await token('prof-hub'), await token('sub-ada')];
    const get = async (t: string, query: string) => {
      const res = await fetch(`${toolUrl}/api/v1/submissions?${query}`, { headers: { authorization: `token ${t}` } });
      return { status: res.status, body: (await res.json()) as { total: number; next: string | null; submissions: Array<{ owner: string; course: string; grade: unknown; passback: { status: string } | null }>; error?: string } };
    };
    const all = await get(prof, 'course=a');
    expect(all.status).to.equal(200);
    expect(all.body.total).to.equal(2);
    expect(all.body.submissions.map((x) => x.owner).sort()).to.deep.equal(['sub-ada', 'sub-bob']);
    const stored = await db('passbacks').whereIn('submission_id', db('submissions').select('id').where({ course: 'a' })).select('status');
    expect(stored.length).to.be.greaterThan(0);
    for (const x of all.body.submissions) expect(x.passback?.status).to.be.a('string');
    const first = await get(prof, 'course=a&per_page=1');
    expect(first.body.submissions).to.have.length(1);
    expect(first.body.next).to.equal('/api/v1/submissions?course=a&per_page=1&page=2');
    const second = await get(prof, 'course=a&per_page=1&page=2');
    expect(second.body.submissions).to.have.length(1);
    expect(second.body.submissions[0]!.owner).not.to.equal(first.body.submissions[0]!.owner);
    expect(second.body.next).to.equal(null);
    expect((await get(prof, 'course=a&learner=sub-bob')).body.submissions.map((x) => x.owner)).to.deep.equal(['sub-bob']);
    expect((await get(prof, 'course=a&status=timeout')).body.total).to.equal(0);
    // not an instructor of b: only their own there (none)
    expect((await get(prof, 'course=b')).body.total).to.equal(0);
    const mine = await get(ada, 'course=a');
    expect(mine.body.submissions.map((x) => x.owner)).to.deep.equal(['sub-ada']);
    const other = await get(ada, 'course=a&learner=sub-bob');
    expect(other.status).to.equal(400);
    expect(other.body.error ?? JSON.stringify(other.body)).to.include('Only instructors of a may list another learner');
    const bad = await get(prof, 'course=a&status=bogus');
    expect(bad.status).to.equal(400);
    expect(JSON.stringify(bad.body)).to.include('\\"status\\" must be one of queued, grading, graded');
  });
});
