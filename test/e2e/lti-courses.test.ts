import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { loadConfig } from '../../src/config/load.js';
import { createDb, type Db } from '../../src/db/knex.js';
import { devPlatformConfig, toolEndpoints } from '../../src/dev-platform/demo.js';
import { startDevPlatform, type DevComponent, type DevPlatform, type DevUser } from '../../src/dev-platform/index.js';
import { cookieSecret } from '../../src/submissions/hub-oauth.js';
import { Signer } from '../../src/submissions/identity.js';
import { requireEngine } from '../helpers/engine.js';
import { craftedLaunch, launchBrowser, launchClaims, startCraftingPlatform, type CraftingPlatform } from '../helpers/lti.js';
import { freePort, spawnGofer, waitFor, type GoferProcess } from '../helpers/process.js';
import { EXAMPLE_TESTS, ROOT, writeConfig } from '../helpers/service.js';

const RUN1 = 'course-v1:GoferX+MR+R1';
const RUN2 = 'course-v1:GoferX+MR+R2';
const block = (run: string, name: string) => `block-v1:${run.slice('course-v1:'.length)}+type@lti_consumer+block@${name}`;
const R1X = block(RUN1, 'x');
const R1Y = block(RUN1, 'y');
const R2X = block(RUN2, 'x');
const R2Y = block(RUN2, 'y');
const SNEAKY = block(RUN1, 'sneaky');
const WEIGHTLESS = block(RUN1, 'weightless');
const PAST_DUE = block(RUN1, 'pastdue');
const CLOSED = block(RUN1, 'closed');
const EXAMPLE = readFileSync(path.join(ROOT, 'config/example/lab01/lab01.ipynb'), 'utf8');

/**
 * Two course runs of one Gofer course on one edX-like platform (one issuer), two components for
 * the same assignment in each, a course-A staff member trying to reach course B, and what edX
 * will not record, all through a real `gofer serve`, the dev platform and Chromium.
 */
describe('LTI: courses stay apart, grades go only where the learner launched (real engine)', function () {
  this.timeout(300_000);
  let browser: Browser;
  let platform: DevPlatform;
  let crafted: CraftingPlatform;
  let gofer: GoferProcess;
  let toolUrl: string;
  let dir: string;
  let db: Db;
  let file: string;
  const users: DevUser[] = [
    { username: 'ada', sub: 'sub-ada', name: 'Ada', email: 'ada@example.edu', role: 'learner', sharePii: true },
    { username: 'bob', sub: 'sub-bob', name: 'Bob', email: 'bob@example.edu', role: 'learner', sharePii: true },
    { username: 'cy', sub: 'sub-cy', name: 'Cy', email: 'cy@example.edu', role: 'learner', sharePii: true },
    { username: 'prof', sub: 'sub-prof', name: 'Prof', email: 'prof@example.edu', role: 'staff', sharePii: true },
  ];

  before(async () => {
    await requireEngine();
    browser = await launchBrowser();
    const port = await freePort();
    toolUrl = `http://127.0.0.1:${port}`;
    const tool = toolEndpoints(toolUrl);
    const component = (usageKey: string, name: string, custom: string[], o: Partial<DevComponent> = {}): DevComponent => ({
      usageKey, configId: `cfg-${name}`, clientId: `client-${name}`, name, weight: 3, graded: true, acceptGradesPastDue: true, custom, agsMode: 'declarative', tool, ...o,
    });
    const components = [
      component(R1X, 'r1x', ['assignment=lab01']),
      component(R1Y, 'r1y', ['assignment=lab01']),
      component(R2X, 'r2x', ['assignment=lab01']),
      component(R2Y, 'r2y', ['assignment=lab01']),
      component(SNEAKY, 'sneaky', ['assignment=lab01', 'course=other']),
      component(WEIGHTLESS, 'weightless', ['assignment=lab01'], { weight: 0 }),
      component(PAST_DUE, 'pastdue', ['assignment=lab01'], { due: new Date('2021-01-01T00:00:00Z'), acceptGradesPastDue: false }),
      component(CLOSED, 'closed', ['assignment=closed']),
    ];
    platform = await startDevPlatform({ courseKey: RUN1, courseTitle: 'Run 1', runs: [{ key: RUN2, title: 'Run 2' }], components, users });
    crafted = await startCraftingPlatform();
    ({ file, dir } = writeConfig({
      server: { host: '127.0.0.1', port, submissionsPerMinute: 100 },
      queue: { workers: 1, pollMs: 100 },
      passback: { retryDelaySeconds: 0.2, pollMs: 100 },
      lti: {
        development: true,
        hubUserClaim: 'sub',
        platforms: [
          devPlatformConfig(platform, components),
          { issuer: crafted.issuer, authUrl: crafted.authUrl, tokenUrl: crafted.tokenUrl, keysetUrl: crafted.keysetUrl, clients: [{ clientId: crafted.clientId }] },
        ],
      },
      courses: [
        {
          id: '8x',
          contexts: [RUN1, RUN2, 'course-v1:Crafted+C1+2026'],
          assignments: [
            { id: 'lab01', tests: EXAMPLE_TESTS, files: ['data.csv'], points: 3, timeoutSeconds: 60 },
            { id: 'closed', tests: EXAMPLE_TESTS, due: '2020-01-01T00:00:00Z', late: 'reject' },
          ],
        },
        { id: 'other', contexts: ['course-v1:Other+O+2026'], assignments: [{ id: 'lab01', tests: EXAMPLE_TESTS }] },
      ],
    }));
    db = createDb(loadConfig(file, {}));
    gofer = spawnGofer(['--config', file, 'serve'], path.join(dir, 'gofer.log'));
    await waitFor('gofer to answer /health', async () => (await fetch(`${toolUrl}/health`)).ok, 60_000);
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
    if (this.currentTest?.state === 'failed') process.stderr.write(`\n--- gofer log ---\n${readFileSync(path.join(dir, 'gofer.log'), 'utf8').split('\n').slice(-30).join('\n')}\n`);
  });

  const launch = async (page: Page, user: string, usageKey: string) => {
    await page.goto(platform.launchUrl(user, usageKey));
    await page.waitForLoadState('networkidle');
  };
  const upload = async (page: Page, name: string) => {
    const p = path.join(dir, name);
    const nb = JSON.parse(EXAMPLE);
    nb.cells.push({ cell_type: 'code', id: name.replace(/\W/g, ''), metadata: {}, execution_count: null, outputs: [], source: `variant = '${name}'` });
    writeFileSync(p, JSON.stringify(nb));
    await page.setInputFiles('#upload input[type=file]', p);
    // the page's script posts the upload in place (no navigation): wait for Gofer's answer
    const [answer] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/app/submit'), page.click('#upload button')]);
    expect(answer.status(), await answer.text()).to.equal(202);
  };
  const scoresOn = (usageKey: string) => platform.lineItems().filter((l) => l.resourceLinkId === usageKey).flatMap((l) => l.scores.map((s) => s.userId)).sort();
  const publishedOn = (username: string, usageKey: string) => platform.gradebook().find((g) => g.username === username && g.usageKey === usageKey)?.published ?? null;
  const sent = (owner: string) => waitFor(`${owner}'s grade to be sent`, async () => (await db('passbacks').where({ owner, status: 'sent' }).first()) !== undefined, 120_000, 300);

  it('a grade goes to each component the learner launched, and to no other component or course run', async () => {
    const page = await browser.newPage();
    // ada launches one component of run 1; bob both components of run 2
    await launch(page, 'ada', R1Y);
    await upload(page, 'ada.ipynb');
    await launch(page, 'bob', R2X);
    await launch(page, 'bob', R2Y);
    await upload(page, 'bob.ipynb');
    await sent('sub-ada');
    await sent('sub-bob');
    await page.close();
    expect(scoresOn(R1Y)).to.deep.equal(['sub-ada']);
    expect(scoresOn(R1X)).to.deep.equal([]);
    expect(scoresOn(R2X)).to.deep.equal(['sub-bob']);
    expect(scoresOn(R2Y)).to.deep.equal(['sub-bob']);
    expect(publishedOn('ada', R1Y)).to.equal(3);
    for (const other of [R1X, R2X, R2Y]) expect(publishedOn('ada', other), other).to.equal(null);
    expect(publishedOn('bob', R2X)).to.equal(3);
    expect(publishedOn('bob', R2Y)).to.equal(3);
    for (const other of [R1X, R1Y]) expect(publishedOn('bob', other), other).to.equal(null);
  });

  it('a learner who launched no component of the assignment: the grade waits, then goes to the one they launch', async () => {
    const page = await browser.newPage();
    await launch(page, 'cy', CLOSED);
    const token = await new Promise<string>((resolve, reject) =>
      execFile('node', [path.join(ROOT, 'bin/gofer.js'), '--config', file, 'token', 'create', 'sub-cy'], (err, out) => (err ? reject(err) : resolve(out.trim()))),
    );
    const nb = JSON.parse(EXAMPLE);
    nb.metadata = { ...nb.metadata, assignment: 'lab01' };
    const res = await fetch(`${toolUrl}/api/v1/submissions`, { method: 'POST', headers: { authorization: `token ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ nb }) });
    expect(res.status).to.equal(202);
    const row = await waitFor('the grade to wait', async () => {
      const r = await db('passbacks').where({ owner: 'sub-cy' }).first();
      return r?.status === 'waiting' && r;
    }, 120_000, 300);
    expect(row.last_error).to.include('has not launched assignment lab01');
    await launch(page, 'cy', R2X);
    await sent('sub-cy');
    await page.close();
    expect(scoresOn(R2X)).to.deep.equal(['sub-bob', 'sub-cy']);
    for (const other of [R1X, R1Y, R2Y]) expect(scoresOn(other), other).to.not.include('sub-cy');
  });

  it("a course-A staff member's custom parameter course=<B> gets a page, no staff session and no binding in B", async () => {
    const page = await browser.newPage();
    const answer = await page.goto(platform.launchUrl('prof', SNEAKY));
    await page.waitForLoadState('networkidle');
    const body = (await page.textContent('body')) ?? '';
    expect(body).to.include('course=other names Gofer course other').and.include(`("${RUN1}") is not one of its contexts`);
    expect(page.url()).to.not.include('/app/');
    expect(await page.locator('#course-page').count()).to.equal(0);
    expect(answer).to.not.equal(null);
    expect(await db('bindings').where({ course: 'other' })).to.deep.equal([]);
    await page.close();
  });

  it('an equal sub from another platform is another person: no hub name from the claim', async () => {
    const r = await craftedLaunch(toolUrl, crafted, (nonce) => crafted.sign(launchClaims(crafted, toolUrl, nonce, { sub: 'sub-ada' })));
    expect(r.status, r.text.slice(0, 300)).to.equal(200);
    expect(r.text).to.include('Connect your JupyterHub account');
    const crafted_ = await db('identities').where({ issuer: crafted.issuer, sub: 'sub-ada' }).first();
    expect(crafted_.hub_user).to.equal(null);
    const devs = await db('identities').where({ issuer: platform.issuer, sub: 'sub-ada' }).first();
    expect(devs.hub_user).to.equal('sub-ada');
  });

  it('says so when edX will not record a grade: a weight of 0, a past due date; staff see it too', async () => {
    const page = await browser.newPage();
    await launch(page, 'ada', WEIGHTLESS);
    expect(await page.textContent('#edx-notice')).to.include('edX will not record these grades').and.include('maximum score is 0');
    const sentBefore = (await db('passbacks').where({ owner: 'sub-ada', status: 'sent' })).length;
    await upload(page, 'ada-weightless.ipynb');
    await waitFor('the grade on the weightless component', async () => (await db('passbacks').where({ owner: 'sub-ada', status: 'sent' })).length > sentBefore, 120_000, 300);
    await page.reload();
    expect(await page.textContent('.submission .passback')).to.equal("sent to edX, which will not record it: the component's weight in edX is 0");
    expect(await page.textContent('#edx-total')).to.equal("edX's gradebook will not show grades for this assignment: the component's weight in edX is 0.");
    // as edX: stored, and counting for nothing
    expect(scoresOn(WEIGHTLESS)).to.deep.equal(['sub-ada']);
    expect(publishedOn('ada', WEIGHTLESS) ?? 0).to.equal(0);
    await launch(page, 'ada', PAST_DUE);
    expect(await page.textContent('#edx-notice')).to.include('2021-01-01T00:00:00.000Z').and.include('accepts grades past due');
    await launch(page, 'prof', R1Y);
    await Promise.all([page.waitForNavigation(), page.click('#course-page')]);
    const notices = (await page.textContent('#edx-notices')) ?? '';
    expect(notices).to.include(WEIGHTLESS).and.include(PAST_DUE);
    await page.close();
  });

  it('once submissions are closed the page says since when and has no upload form; a late upload gets a page', async () => {
    const page = await browser.newPage();
    await launch(page, 'ada', CLOSED);
    expect(await page.getAttribute('#closed time', 'datetime')).to.equal('2020-01-01T00:00:00.000Z');
    expect(await page.locator('#upload').count()).to.equal(0);
    const launchId = new URL(page.url()).searchParams.get('l')!;
    const csrf = new Signer(cookieSecret(undefined, {}, path.join(dir, 'data'))).tag('csrf', launchId);
    // page.request sends the launching browser's cookie, as the upload form would
    const res = await page.request.post(`${toolUrl}/app/submit?l=${encodeURIComponent(launchId)}&csrf=${encodeURIComponent(csrf)}`, {
      multipart: { file: { name: 'late.ipynb', mimeType: 'application/x-ipynb+json', buffer: Buffer.from(EXAMPLE) } },
      maxRedirects: 0,
    });
    expect(res.status()).to.equal(403);
    expect(res.headers()['content-type']).to.match(/text\/html/);
    const late = await res.text();
    expect(late).to.include('late submissions are not accepted');
    // a page inside the course's frame: it leads back to the assignment
    expect(late).to.include(`<a id="back" href="assignment?l=${encodeURIComponent(launchId)}">Back to the assignment</a>`);
    await page.close();
  });
});
