import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { loadConfig } from '../../src/config/load.js';
import { createDb, type Db } from '../../src/db/knex.js';
import { devPlatformConfig, toolEndpoints } from '../../src/dev-platform/demo.js';
import { startDevPlatform, type DevComponent, type DevPlatform, type DevUser } from '../../src/dev-platform/index.js';
import { requireEngine } from '../helpers/engine.js';
import { ARTIFACTS, craftedLaunch, launchBrowser, launchClaims, startCraftingPlatform, type CraftingPlatform } from '../helpers/lti.js';
import { freePort, spawnGofer, waitFor, type GoferProcess } from '../helpers/process.js';
import { EXAMPLE_TESTS, ROOT, writeConfig } from '../helpers/service.js';

/**
 * The whole chain against the edX-like dev platform, in a real browser: launch → submission →
 * grading in Docker → score in the platform's gradebook, for learners and instructors; launch
 * problems and attacks; a Gofer killed with grades in its outbox.
 */
const COURSE_KEY = 'course-v1:GoferX+E2E+2026';
const LAB = `block-v1:GoferX+E2E+2026+type@lti_consumer+block@lab01`;
const PICKER = `block-v1:GoferX+E2E+2026+type@lti_consumer+block@picker`;
const EXAMPLE = readFileSync(path.join(ROOT, 'config/example/lab01/lab01.ipynb'), 'utf8');

function variant(i: number, wrong = false): string {
  const nb = JSON.parse(EXAMPLE);
  if (wrong) nb.cells[2].source = 'def square(x):\n    return 0';
  if (wrong) nb.cells[4].source = 'temps = []\nmean_temp = 0\nhottest = None';
  nb.cells.push({ cell_type: 'code', id: `v${i}`, metadata: {}, execution_count: null, outputs: [], source: `variant = ${i}` });
  return JSON.stringify(nb);
}

describe('LTI 1.3 with the dev platform, in a real browser (real engine)', function () {
  this.timeout(300_000);
  let browser: Browser;
  let platform: DevPlatform;
  let crafted: CraftingPlatform;
  let gofer: GoferProcess | undefined;
  let toolUrl: string;
  let file: string;
  let dir: string;
  let db: Db;
  const users: DevUser[] = [
    { username: 'ada', sub: 'sub-ada-0001', name: 'Ada Lovelace', email: 'ada@example.edu', role: 'learner', sharePii: true },
    { username: 'bob', sub: 'sub-bob-0002', name: 'Bob Babbage', email: 'bob@example.edu', role: 'learner', sharePii: true },
    { username: 'prof', sub: 'sub-prof-0003', name: 'Grace Hopper', email: 'prof@example.edu', role: 'staff', sharePii: true },
  ];

  const start = async (): Promise<void> => {
    gofer = spawnGofer(['--config', file, 'serve'], path.join(dir, 'gofer.log'));
    await waitFor('gofer to answer /health', async () => (await fetch(`${toolUrl}/health`)).ok, 60_000);
  };
  const shot = (page: Page, name: string) => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
  const gofeLog = () => readFileSync(path.join(dir, 'gofer.log'), 'utf8').split('\n').slice(-30).join('\n');

  before(async () => {
    await requireEngine();
    browser = await launchBrowser();
    const port = await freePort();
    toolUrl = `http://127.0.0.1:${port}`;
    const tool = { ...toolEndpoints(toolUrl), deepLinkLaunchUrl: `${toolUrl}/lti` };
    const components: DevComponent[] = [
      { usageKey: LAB, configId: 'cfg-lab01', clientId: 'client-lab01', name: 'Lab 01', weight: 3, graded: true, acceptGradesPastDue: true, custom: ['assignment=lab01'], agsMode: 'declarative', tool },
      { usageKey: PICKER, configId: 'cfg-picker', clientId: 'client-picker', name: 'Picked', weight: 1, graded: true, acceptGradesPastDue: true, custom: [], agsMode: 'programmatic', deepLinking: true, tool },
    ];
    platform = await startDevPlatform({ courseKey: COURSE_KEY, courseTitle: 'E2E', components, users });
    crafted = await startCraftingPlatform();
    ({ file, dir } = writeConfig({
      server: { host: '127.0.0.1', port, submissionsPerMinute: 100 },
      queue: { workers: 1, pollMs: 100, retryDelaySeconds: 1 },
      passback: { retryDelaySeconds: 0.2, pollMs: 100 },
      lti: {
        development: true,
        hubUserClaim: 'sub',
        platforms: [
          devPlatformConfig(platform, components),
          { issuer: crafted.issuer, authUrl: crafted.authUrl, tokenUrl: crafted.tokenUrl, keysetUrl: crafted.keysetUrl, clients: [{ clientId: crafted.clientId }] },
        ],
      },
      courses: [{ id: '8x', contexts: [COURSE_KEY], assignments: [{ id: 'lab01', section: '1', tests: EXAMPLE_TESTS, files: ['data.csv'], points: 3, timeoutSeconds: 60 }] }],
    }));
    db = createDb(loadConfig(file, {}));
    await start();
  });

  after(async () => {
    gofer?.child.kill('SIGTERM');
    await gofer?.exited;
    await db?.destroy();
    await browser?.close();
    await platform?.stop();
    await crafted?.stop();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') process.stderr.write(`\n--- gofer log ---\n${gofeLog()}\n`);
  });

  const launch = async (page: Page, user: string, block = LAB, kind: 'resource' | 'deep-link' = 'resource') => {
    await page.goto(platform.launchUrl(user, block, kind));
    await page.waitForLoadState('networkidle');
  };
  const upload = async (page: Page, notebook: string, name: string) => {
    const p = path.join(dir, name);
    writeFileSync(p, notebook);
    await page.setInputFiles('#upload input[type=file]', p);
    // the page's script posts the upload in place (no navigation): wait for Gofer's answer
    const [answer] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/app/submit'), page.click('#upload button')]);
    expect(answer.status(), await answer.text()).to.equal(202);
  };
  const reloadUntil = async (page: Page, what: RegExp, label: string) =>
    waitFor(label, async () => {
      await page.reload();
      return what.test((await page.textContent('body')) ?? '');
    }, 90_000, 500);
  const published = (username: string) => platform.gradebook().find((g) => g.username === username && g.usageKey === LAB)?.published ?? null;

  it('a learner launches, submits on the assignment page, and the grade reaches the platform gradebook', async () => {
    const page = await browser.newPage();
    await launch(page, 'ada');
    expect(page.url()).to.match(/\/app\/assignment\?l=/);
    expect(await page.textContent('h1')).to.equal('lab01');
    expect(await page.locator('#open-hub').count(), 'no lti.hubLink, no "Open in JupyterHub"').to.equal(0);
    await upload(page, variant(1), 'ada1.ipynb');
    await reloadUntil(page, /sent to edX/, 'the score to reach edX');
    expect(await page.textContent('.submission .score')).to.equal('3 / 3 points (100%)');
    await shot(page, 'learner-assignment');
    expect(published('ada')).to.equal(3);
    const score = platform.lineItems().find((l) => l.resourceLinkId === LAB)!.scores.find((s) => s.userId === 'sub-ada-0001')!;
    expect(score).to.include({ scoreGiven: 3, scoreMaximum: 3, activityProgress: 'Completed', gradingProgress: 'FullyGraded' });
    await page.goto(`${platform.url}/gradebook`);
    await shot(page, 'platform-gradebook');
    await page.close();
  });

  it('a learner who launches only after being graded gets the grade sent then; a score of 0 is sent and not published', async () => {
    const token = await new Promise<string>((resolve, reject) =>
      execFile('node', [path.join(ROOT, 'bin/gofer.js'), '--config', file, 'token', 'create', 'sub-bob-0002'], (err, out) => (err ? reject(err) : resolve(out.trim()))),
    );
    const nb = JSON.parse(variant(2, true));
    nb.metadata = { ...nb.metadata, assignment: 'lab01', section: '1' };
    const res = await fetch(`${toolUrl}/api/v1/submissions`, { method: 'POST', headers: { authorization: `token ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ nb }) });
    expect(res.status).to.equal(202);
    const { id } = (await res.json()) as { id: string };
    await waitFor('the zero grade', async () => (await db('passbacks').where({ submission_id: id }).first())?.status === 'waiting', 90_000, 300);
    const before = platform.scoresReceived;
    const page = await browser.newPage();
    await launch(page, 'bob');
    await reloadUntil(page, /sent to edX/, 'the waiting score to be sent after the launch');
    expect(platform.scoresReceived - before).to.equal(1);
    const stored = platform.lineItems().find((l) => l.resourceLinkId === LAB)!.scores.find((s) => s.userId === 'sub-bob-0002')!;
    expect(stored.scoreGiven).to.equal(0);
    expect(published('bob')).to.equal(null);
    await page.close();
  });

  it('an instructor sees grades with their passback state, downloads the CSV, regrades and resends', async () => {
    const page = await browser.newPage();
    await launch(page, 'prof');
    await Promise.all([page.waitForNavigation(), page.click('#course-page')]);
    const body = (await page.textContent('body')) ?? '';
    expect(body).to.include('sub-ada-0001').and.include('sub-bob-0002').and.include('does not publish a score of 0');
    expect(await page.locator('tr.grade').count()).to.equal(2);
    await shot(page, 'instructor-course');
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#csv')]);
    const csv = readFileSync((await download.path())!, 'utf8');
    expect(csv.split('\n')[0]).to.equal('course,assignment,learner,score,points,max_points,status,submitted_at,graded_at,submission,grade,out_of,name,email,time_zone,submitted_local,graded_local');
    // with the learner's name and email from the launch
    expect(csv).to.match(/^8x,lab01,sub-ada-0001,1,2,2,graded,[^,]+,[^,]+,[0-9a-f-]{36},3,3,Ada Lovelace,ada@example\.edu,UTC,\d{4}-\d{2}-\d{2} \d{2}:\d{2},\d{4}-\d{2}-\d{2} \d{2}:\d{2}$/m);
    // one scale: the staff page shows the grade out of the assignment's 3 points, as the learner page does
    expect(await page.textContent('tr.grade:has-text("sub-ada-0001") .grade')).to.equal('3 / 3 points (100%)');
    expect(await page.locator('tr.grade', { hasText: 'sub-ada-0001' }).locator('button', { hasText: 'Regrade' }).getAttribute('aria-label')).to.equal('Regrade: sub-ada-0001, lab01');

    const adaSubmission = (await db('submissions').where({ owner: 'sub-ada-0001' }).first()).id as string;
    const results = async () => Number((await db('results').where({ submission_id: adaSubmission }).count({ n: '*' }).first())!.n);
    expect(await results()).to.equal(1);
    const row = page.locator('tr.grade', { hasText: 'sub-ada-0001' });
    await Promise.all([page.waitForNavigation(), row.locator('button', { hasText: 'Regrade' }).click()]);
    await waitFor('the regrade', async () => (await results()) === 2, 90_000, 300);
    const newest = () => db('passbacks').where({ submission_id: adaSubmission }).orderBy('id', 'desc').first();
    await waitFor('the regraded score to be sent', async () => (await newest())?.status === 'sent', 30_000, 200);
    const sentAt = Number((await newest()).sent_at);
    await Promise.all([page.waitForNavigation(), page.locator('tr.grade', { hasText: 'sub-ada-0001' }).locator('button', { hasText: 'Resend score' }).click()]);
    // sent again; edX answers that this score (same timestamp) is already there, which counts as delivered
    await waitFor('the resent score', async () => Number((await newest())?.sent_at) > sentAt, 30_000, 200);
    await page.close();
  });

  it('deep linking: an instructor picks an assignment and the platform receives a resource link carrying assignment=<id>', async () => {
    const page = await browser.newPage();
    await launch(page, 'prof', PICKER, 'deep-link');
    expect(await page.textContent('h1')).to.equal('Choose an assignment');
    await shot(page, 'deep-linking');
    await Promise.all([page.waitForNavigation({ url: /lti-dl\/response/ }), page.click('button:has-text("8x: lab01")')]);
    const links = platform.deepLinks().find((d) => d.usageKey === PICKER);
    expect(links?.items[0]).to.deep.include({ type: 'ltiResourceLink', custom: { assignment: 'lab01' } });
    await page.close();
  });

  describe('launch problems: a page that says what the course team must change', () => {
    const cases: Array<[string, Record<string, unknown>, RegExp]> = [
      ['no assignment parameter', { 'https://purl.imsglobal.org/spec/lti/claim/custom': {} }, /add the custom parameter assignment=&lt;id&gt;/],
      ['an unknown assignment', { 'https://purl.imsglobal.org/spec/lti/claim/custom': { assignment: 'lab99' } }, /assignment=lab99 names no assignment of course 8x/],
      ['no grade claim', { 'https://purl.imsglobal.org/spec/lti-ags/claim/endpoint': undefined }, /tick &quot;This activity is graded&quot;/],
    ];
    for (const [what, overrides, message] of cases) {
      it(what, async () => {
        const r = await craftedLaunch(toolUrl, crafted, (nonce) => crafted.sign(launchClaims(crafted, toolUrl, nonce, overrides)));
        expect(r.status).to.equal(400);
        // the page carries the message escaped: its text, never markup
        expect(r.text).to.match(message);
        expect(r.text).not.to.match(/assignment=<id>|tick "This activity/);
      });
    }
    it('an unregistered platform client', async () => {
      const err = await craftedLaunch(toolUrl, { ...crafted, clientId: 'not-registered' }, async () => '').catch((e: Error) => e);
      expect(String(err)).to.match(/\(400\).*not registered with Gofer/s);
    });
  });

  describe('attacks are refused', () => {
    const refused: Array<[string, (nonce: string) => Promise<string>]> = [
      ['an id_token signed with the wrong key', (nonce) => crafted.sign(launchClaims(crafted, toolUrl, nonce), { wrongKey: true })],
      ['a wrong audience', (nonce) => crafted.sign(launchClaims(crafted, toolUrl, nonce, { aud: 'someone-else', azp: 'someone-else' }))],
      ['a wrong issuer', (nonce) => crafted.sign(launchClaims(crafted, toolUrl, nonce, { iss: platform.issuer }))],
      ['an expired token', (nonce) => crafted.sign(launchClaims(crafted, toolUrl, nonce, { iat: Math.floor(Date.now() / 1000) - 7200, exp: Math.floor(Date.now() / 1000) - 3600 }))],
    ];
    for (const [what, token] of refused) {
      it(what, async () => {
        const r = await craftedLaunch(toolUrl, crafted, token);
        expect(r.status, r.text.slice(0, 300)).to.equal(401);
        expect(r.text).to.match(/could not be verified/);
      });
    }

    it('a replayed nonce', async () => {
      const first = await craftedLaunch(toolUrl, crafted, (nonce) => crafted.sign(launchClaims(crafted, toolUrl, nonce)));
      expect(first.status).to.equal(200);
      const again = await craftedLaunch(toolUrl, crafted, () => crafted.sign(launchClaims(crafted, toolUrl, first.nonce)));
      expect(again.status).to.equal(401);
    });

    it('a learner opening instructor pages and actions, and a forged CSRF token', async () => {
      const page = await browser.newPage();
      await launch(page, 'ada');
      // page.request sends the browser's cookies, as the page itself would
      const learner = new URL(page.url()).searchParams.get('l')!;
      const csrf = new URL((await page.getAttribute('#upload', 'action'))!, toolUrl).searchParams.get('csrf')!;
      const course = await page.request.get(`${toolUrl}/app/course?l=${encodeURIComponent(learner)}`);
      expect(course.status()).to.equal(403);
      expect(await course.text()).to.match(/Only course staff/);
      const sub = (await db('submissions').where({ owner: 'sub-bob-0002' }).first()).id as string;
      const regrade = await page.request.post(`${toolUrl}/app/regrade`, { form: { l: learner, csrf, submission: sub }, maxRedirects: 0 });
      expect(regrade.status()).to.equal(403);

      await launch(page, 'prof');
      const staff = new URL(page.url()).searchParams.get('l')!;
      const forged = await page.request.post(`${toolUrl}/app/regrade`, { form: { l: staff, csrf: 'forged', submission: sub }, maxRedirects: 0 });
      expect(forged.status()).to.equal(403);
      expect(await forged.text()).to.match(/did not come from Gofer/);
      const tampered = await page.request.get(`${toolUrl}/app/course?l=${encodeURIComponent(`${staff.slice(0, -4)}AAAA`)}`);
      expect(tampered.status()).to.equal(403);
      await page.close();
    });

    it("a staff launch's page address opens nothing without the browser that launched (no bearer token in the address)", async () => {
      const page = await browser.newPage();
      await launch(page, 'prof');
      const course = new URL(page.url());
      course.pathname = '/app/course';
      expect((await page.request.get(course.href)).status(), 'the launching browser opens the staff page').to.equal(200);
      // the address as a screenshot, a log line or a Referer would carry it
      const bare = await fetch(course);
      expect(bare.status).to.equal(403);
      expect(await bare.text()).to.match(/did not send Gofer its session cookie/);
      // another browser, with a launch (and cookie) of its own
      const other = await browser.newPage();
      await launch(other, 'ada');
      const stolen = await other.request.get(course.href);
      expect(stolen.status()).to.equal(403);
      expect(await stolen.text()).to.match(/belongs to another launch/);
      await other.close();
      await page.close();
    });

    it("staff rights are checked at each request: demoted in the course, a staff page's earlier session loses them at the next launch", async () => {
      const page = await browser.newPage();
      await launch(page, 'prof');
      const course = new URL(page.url());
      course.pathname = '/app/course';
      expect((await page.request.get(course.href)).status()).to.equal(200);
      const prof = users.find((u) => u.username === 'prof')!;
      prof.role = 'learner';
      try {
        const later = await browser.newPage();
        await launch(later, 'prof');
        expect(await later.locator('#course-page').count()).to.equal(0);
        await later.close();
        const again = await page.request.get(course.href);
        expect(again.status(), 'the first launch\'s staff page, after a launch as a learner').to.equal(403);
        expect(await again.text()).to.match(/Only course staff/);
      } finally {
        prof.role = 'staff';
      }
      await launch(page, 'prof');
      expect(await page.locator('#course-page').count()).to.equal(1);
      await page.close();
    });
  });

  it('Gofer killed with a grade in the outbox sends it after the restart, once', async () => {
    platform.faults.down = true;
    const page = await browser.newPage();
    await launch(page, 'ada');
    await upload(page, variant(3), 'ada3.ipynb');
    const id = (await db('submissions').where({ owner: 'sub-ada-0001' }).orderBy('received_at', 'desc').first()).id as string;
    await waitFor('a failed send attempt', async () => Number((await db('passbacks').where({ submission_id: id }).first())?.attempts ?? 0) >= 1, 90_000, 200);
    gofer!.child.kill('SIGKILL');
    await gofer!.exited;
    const before = platform.scoresReceived;
    platform.faults.down = false;
    await start();
    await waitFor('the outbox to drain', async () => (await db('passbacks').where({ submission_id: id }).first())?.status === 'sent', 90_000, 200);
    await new Promise((r) => setTimeout(r, 1500));
    expect(platform.scoresReceived - before).to.equal(1);
    await page.close();
  });
});
