import { expect } from 'chai';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Browser, BrowserContext, Frame, Page } from 'playwright-core';
import { devPlatformConfig, toolEndpoints } from '../../src/dev-platform/demo.js';
import { startDevPlatform, type DevComponent, type DevPlatform, type DevUser } from '../../src/dev-platform/index.js';
import { requireEngine } from '../helpers/engine.js';
import { ARTIFACTS, launchBrowser } from '../helpers/lti.js';
import { freePort, spawnGofer, waitFor, type GoferProcess } from '../helpers/process.js';
import { EXAMPLE_TESTS, ROOT, writeConfig } from '../helpers/service.js';

/**
 * edX's two presentations with Gofer's default cookies, in Chromium with its default settings
 * (third-party cookies blocked): the platform on 127.0.0.1 and Gofer on localhost are two
 * sites, as edX and Gofer are. Inside the platform's iframe and in a new window, the learner
 * reaches Gofer's page, uploads a notebook and sees the grade the real engine gave it.
 */
const COURSE_KEY = 'course-v1:GoferX+XS+2026';
const LAB = 'block-v1:GoferX+XS+2026+type@lti_consumer+block@lab01';
const EXAMPLE = readFileSync(path.join(ROOT, 'config/example/lab01/lab01.ipynb'), 'utf8');

describe('edX presentations across two sites with the default cookies (Chromium, real engine)', function () {
  this.timeout(300_000);
  let browser: Browser;
  let platform: DevPlatform;
  let gofer: GoferProcess | undefined;
  let toolUrl: string;
  let dir: string;
  const users: DevUser[] = [
    { username: 'ada', sub: 'sub-ada-xs-0001', name: 'Ada Lovelace', email: 'ada@example.edu', role: 'learner', sharePii: true },
    { username: 'bob', sub: 'sub-bob-xs-0002', name: 'Bob Babbage', email: 'bob@example.edu', role: 'learner', sharePii: true },
  ];
  const log = () => readFileSync(path.join(dir, 'gofer.log'), 'utf8').split('\n').slice(-30).join('\n');

  before(async () => {
    await requireEngine();
    browser = await launchBrowser();
    const port = await freePort();
    // another site than the platform's 127.0.0.1: Gofer's cookies are third-party in its iframe
    toolUrl = `http://localhost:${port}`;
    const tool = toolEndpoints(toolUrl);
    const components: DevComponent[] = [
      { usageKey: LAB, configId: 'cfg-xs-lab01', clientId: 'client-xs-lab01', name: 'Lab 01', weight: 2, graded: true, acceptGradesPastDue: true, custom: ['assignment=lab01'], agsMode: 'declarative', tool },
    ];
    platform = await startDevPlatform({ courseKey: COURSE_KEY, courseTitle: 'Cross-site', components, users });
    ({ dir } = writeConfig({
      server: { host: '127.0.0.1', port, submissionsPerMinute: 100 },
      queue: { workers: 1, pollMs: 100, retryDelaySeconds: 1 },
      passback: { retryDelaySeconds: 0.2, pollMs: 100 },
      // not development: the cookie defaults a real deployment gets
      lti: { url: toolUrl, encryptionKey: 'cross-site-test-encryption-key', hubUserClaim: 'sub', platforms: [devPlatformConfig(platform, components)] },
      courses: [{ id: '8x', contexts: [COURSE_KEY], assignments: [{ id: 'lab01', section: '1', tests: EXAMPLE_TESTS, files: ['data.csv'], points: 2, timeoutSeconds: 60 }] }],
    }));
    gofer = spawnGofer(['--config', path.join(dir, 'gofer.yaml'), 'serve'], path.join(dir, 'gofer.log'));
    await waitFor('gofer to answer /health', async () => (await fetch(`http://127.0.0.1:${port}/health`)).ok, 60_000);
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

  /** Uploads a distinct notebook on Gofer's page (in `where`) and waits for its grade there. */
  const submitAndSeeGrade = async (where: Page | Frame, name: string): Promise<string> => {
    const nb = JSON.parse(EXAMPLE);
    nb.cells.push({ cell_type: 'code', id: name, metadata: {}, execution_count: null, outputs: [], source: `variant = "${name}"` });
    const file = path.join(dir, `${name}.ipynb`);
    writeFileSync(file, JSON.stringify(nb));
    await where.locator('#upload input[type=file]').setInputFiles(file);
    // the page's script posts the upload in place (no navigation): wait for Gofer's answer, so
    // the reload below cannot cancel the upload
    const owner = 'mainFrame' in where ? where : where.page();
    const [answer] = await Promise.all([owner.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/app/submit'), where.locator('#upload button').click()]);
    expect(answer.status(), await answer.text()).to.equal(202);
    expect(where.url()).to.match(/\/app\/assignment\?l=/);
    await waitFor('the grade on Gofer\'s page', async () => {
      await where.goto(where.url());
      return (await where.locator('.submission .status-graded').count()) > 0;
    }, 120_000, 500);
    return (await where.locator('.submission .score').first().textContent()) ?? '';
  };
  const body = async (where: Page | Frame) => ((await where.textContent('body')) ?? '').slice(0, 600);
  /** A fresh browser profile for one test, closed however the test ends. */
  const inContext = async (use: (context: BrowserContext) => Promise<void>): Promise<void> => {
    const context = await browser.newContext();
    try {
      await use(context);
    } finally {
      await context.close();
    }
  };

  it("inside the platform's iframe (edX's default presentation)", () =>
    inContext(async (context) => {
    const page = await context.newPage();
    await page.goto(`${platform.url}/dev/unit?${new URLSearchParams({ block: LAB, user: 'ada', kind: 'resource' })}`);
    const frame = (await (await page.waitForSelector('iframe')).contentFrame())!;
    await waitFor('the assignment page in the iframe', async () => frame.url().startsWith(`${toolUrl}/app/assignment`), 30_000).catch(async (err: Error) => {
      throw new Error(`${err.message}; the frame is at ${frame.url()}: ${await body(frame)}`);
    });
    expect(await frame.textContent('h1')).to.equal('lab01');
    expect(await submitAndSeeGrade(frame, 'in-iframe')).to.equal('2 / 2 points (100%)');
    await page.screenshot({ path: path.join(ARTIFACTS, 'cross-site-iframe.png'), fullPage: true });
    // the cookies live in the platform's partition, as Chromium keeps cookies of a framed site
    const cookies = await context.cookies(toolUrl);
    expect(cookies.find((c) => c.name === 'gofer-lti'), JSON.stringify(cookies)).to.include({ secure: true, sameSite: 'None' });
    }));

  it('in a new window (the cross-site form POST of the id_token)', () =>
    inContext(async (context) => {
    const page = await context.newPage();
    await page.goto(`${platform.url}/`);
    const link = page.locator('li', { hasText: 'Launch as bob' }).locator('a', { hasText: 'new window' });
    const [popup] = await Promise.all([context.waitForEvent('page'), link.click()]);
    await waitFor('the assignment page in the new window', async () => popup.url().startsWith(`${toolUrl}/app/assignment`), 30_000).catch(async (err: Error) => {
      throw new Error(`${err.message}; the window is at ${popup.url()}: ${await body(popup)}`);
    });
    expect(await popup.textContent('h1')).to.equal('lab01');
    expect(await submitAndSeeGrade(popup, 'new-window')).to.equal('2 / 2 points (100%)');
    }));

  it('every answer limits who may frame it to the platforms, forbids sniffing and keeps addresses to itself', async () => {
    for (const p of ['/health', '/lti/keys', '/app/assignment?l=x', '/nothing-here']) {
      const res = await fetch(`${toolUrl.replace('localhost', '127.0.0.1')}${p}`);
      expect(res.headers.get('content-security-policy'), p).to.equal(`frame-ancestors 'self' ${platform.url}`);
      expect(res.headers.get('x-content-type-options'), p).to.equal('nosniff');
      // ltijs's own answers (/lti/…) carry its stricter no-referrer
      expect(res.headers.get('referrer-policy'), p).to.equal(p.startsWith('/lti/') ? 'no-referrer' : 'same-origin');
    }
  });
});
