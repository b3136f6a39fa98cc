import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { devPlatformConfig, toolEndpoints } from '../../src/dev-platform/demo.js';
import { startDevPlatform, type DevComponent, type DevPlatform, type DevUser } from '../../src/dev-platform/index.js';
import { requireEngine } from '../helpers/engine.js';
import { freePort, requireJupyterHub, startHub, type Hub } from '../helpers/hub.js';
import { ARTIFACTS, launchBrowser } from '../helpers/lti.js';
import { waitFor } from '../helpers/process.js';
import { EXAMPLE_TESTS, ROOT, writeConfig } from '../helpers/service.js';

/**
 * "Connect your JupyterHub account" for real, with no `lti.hubUserClaim`: a real JupyterHub (its
 * proxy, Gofer as a hub-managed service, the real Docker engine), the edX-like dev platform, and
 * Chromium. The learner logs in to the hub, launches the assignment from the platform (which
 * lands on Gofer's own address), follows the connect link through the hub's OAuth, then submits
 * with the hub token exactly as gofer_submit does; the score reaches the platform's gradebook.
 * Last, hub OAuth for browsers: `{prefix}me` and cookie-authenticated POSTs with and without XSRF.
 */
const COURSE_KEY = 'course-v1:GoferX+HUB+2026';
const LAB = 'block-v1:GoferX+HUB+2026+type@lti_consumer+block@lab01';
const WEIGHT = 3;
const LEARNER = 'ada';
const EXAMPLE = readFileSync(path.join(ROOT, 'config/example/lab01/lab01.ipynb'), 'utf8');

/** The example notebook as gofer_submit sends it: metadata naming the assignment and section; `i` makes it distinct. */
function notebook(i: number): Record<string, unknown> {
  const nb = JSON.parse(EXAMPLE) as { metadata: Record<string, unknown>; cells: unknown[] };
  nb.metadata = { ...nb.metadata, assignment: 'lab01', section: '1' };
  nb.cells.push({ cell_type: 'code', id: `hub-linking-${i}`, metadata: {}, execution_count: null, outputs: [], source: `variant = ${i}` });
  return nb;
}

describe('Connecting an LTI identity to a JupyterHub account, and hub OAuth for browsers (real hub, engine, Chromium)', function () {
  this.timeout(300_000);
  let hub: Hub | undefined;
  let platform: DevPlatform | undefined;
  let browser: Browser | undefined;
  let context: BrowserContext;
  let page: Page;
  let token: string;
  let assignmentUrl: string;
  const users: DevUser[] = [
    { username: 'ada', sub: 'sub-ada-hub-0001', name: 'Ada Lovelace', email: 'ada@example.edu', role: 'learner', sharePii: true },
    { username: 'prof', sub: 'sub-prof-hub-0002', name: 'Grace Hopper', email: 'prof@example.edu', role: 'staff', sharePii: true },
  ];
  const shot = (p: Page, name: string) => p.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
  const published = (username: string) => platform!.gradebook().find((g) => g.username === username && g.usageKey === LAB)?.published ?? null;
  const body = async (p: Page) => (await p.textContent('body')) ?? '';

  before(async () => {
    requireJupyterHub();
    await requireEngine();
    browser = await launchBrowser();
    // Gofer's port is fixed before anything starts: the platform's tool URLs, Gofer's LTI tool URL
    // and the hub service's 'url' must all name it; the hub's public (proxy) port likewise, for hub.publicUrl
    const goferPort = await freePort();
    let publicPort = await freePort();
    while (publicPort === goferPort) publicPort = await freePort();
    const toolUrl = `http://127.0.0.1:${goferPort}`;
    const tool = toolEndpoints(toolUrl);
    const components: DevComponent[] = [
      { usageKey: LAB, configId: 'cfg-hub-lab01', clientId: 'client-hub-lab01', name: 'Lab 01', weight: WEIGHT, graded: true, acceptGradesPastDue: true, custom: ['assignment=lab01'], agsMode: 'declarative', tool },
    ];
    platform = await startDevPlatform({ courseKey: COURSE_KEY, courseTitle: 'Hub linking', components, users });
    const { file, dir } = writeConfig({
      server: { host: '127.0.0.1', port: goferPort, submissionsPerMinute: 100 },
      hub: { publicUrl: `http://127.0.0.1:${publicPort}` },
      queue: { workers: 1, pollMs: 100, retryDelaySeconds: 1 },
      passback: { retryDelaySeconds: 0.2, pollMs: 100 },
      // no hubUserClaim: the learner connects the accounts explicitly
      lti: { development: true, hubLink: '/hub/user-redirect/lab', platforms: [devPlatformConfig(platform, components)] },
      courses: [
        {
          id: '8x',
          contexts: [COURSE_KEY],
          instructors: ['prof'],
          assignments: [{ id: 'lab01', aliases: ['1'], section: '1', tests: EXAMPLE_TESTS, files: ['data.csv'], policy: 'gofer', points: WEIGHT, timeoutSeconds: 60 }],
        },
        // another course, whose instructor (a hub user) must see nothing of 8x
        { id: 'other', instructors: ['bob'], assignments: [{ id: 'lab01', tests: EXAMPLE_TESTS, files: ['data.csv'] }] },
      ],
    });
    hub = await startHub({ dir, goferConfig: file, serviceName: 'gofer', ports: { gofer: goferPort, public: publicPort } });
    expect(hub.goferUrl).to.equal(toolUrl);
    token = await hub.userWithToken(LEARNER);
    context = await browser.newContext();
    page = await context.newPage();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && hub) process.stderr.write(`\n--- last lines of ${hub.logFile} ---\n${hub.tail(60)}\n`);
  });

  after(async () => {
    await browser?.close();
    const result = await hub?.stop();
    if (result?.leftovers.length) process.stderr.write(`killed after the hub stopped: ${result.leftovers.join(', ')}\n`);
    await platform?.stop();
  });

  it('the learner logs in to the hub in the browser (dummy authenticator, the hub login form)', async () => {
    await page.goto(`${hub!.url}/hub/login?next=${encodeURIComponent('/hub/home')}`);
    await page.fill('#username_input', LEARNER);
    await page.fill('#password_input', 'any password');
    await Promise.all([page.waitForURL(/\/hub\/home/), page.click('#login_submit')]);
    expect(await body(page)).to.include(LEARNER);
  });

  it('a launch from the platform lands on Gofer, which does not know the hub account yet and offers to connect it', async () => {
    await page.goto(platform!.launchUrl(LEARNER, LAB));
    await page.waitForLoadState('networkidle');
    expect(page.url()).to.match(/\/app\/assignment\?l=/);
    expect(new URL(page.url()).origin, 'the launch goes to the tool URL, Gofer itself, not through the hub').to.equal(hub!.goferUrl);
    assignmentUrl = page.url();
    expect(await page.textContent('h1')).to.equal('lab01');
    expect(await page.locator('#hub-user').count()).to.equal(0);
    expect(await body(page)).to.match(/does not know your JupyterHub account yet/);
    const href = await page.getAttribute('#connect-hub', 'href');
    const link = new URL(href!, page.url());
    // hub OAuth only works through the hub's public URL: the registered redirect_uri is
    // /services/gofer/oauth_callback there, and the session cookie must be set on that origin
    expect(link.origin, `connect link ${href}`).to.equal(hub!.url);
    expect(link.pathname).to.equal(`${hub!.prefix}login`);
    expect(link.searchParams.get('next')).to.match(new RegExp(`^${hub!.prefix}link\\?t=`));
    // "Open in JupyterHub" (lti.hubLink, a path) is the hub's page too
    expect(await page.getAttribute('#open-hub', 'href')).to.equal(`${hub!.url}/hub/user-redirect/lab`);
    await shot(page, 'hub-connect-assignment');
  });

  it('"Connect your JupyterHub account" goes through the hub\'s OAuth and connects the launch identity to ada', async () => {
    const [popup] = await Promise.all([context.waitForEvent('page'), page.click('#connect-hub')]);
    await popup.waitForLoadState('load');
    const consent = popup.locator('form input[type=submit][value="Authorize"]');
    const linked = popup.locator('#linked');
    const confirm = popup.locator('#confirm-link');
    await waitFor('the consent page or the link page', async () => (await consent.count()) > 0 || (await confirm.count()) > 0, 30_000, 200).catch(async (err: Error) => {
      throw new Error(`${err.message}; the popup is at ${popup.url()}: ${(await body(popup)).slice(0, 400)}`);
    });
    if ((await consent.count()) > 0) {
      // the hub asks the learner to authorize Gofer (the service has no oauth_no_confirm)
      expect(new URL(popup.url()).pathname).to.equal('/hub/api/oauth2/authorize');
      await shot(popup, 'hub-connect-consent');
      await Promise.all([popup.waitForURL(new RegExp(`${hub!.prefix}link\\?t=`)), consent.click()]);
    }
    // opening the link only asks; linking takes the learner's own click (a POST with the hub session's XSRF token)
    await confirm.waitFor({ timeout: 30_000 });
    expect(await popup.textContent('body')).to.match(/Connect the course account .* to the JupyterHub account ada\?/s);
    const forged = await popup.evaluate(async (url) => (await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 't=x&_xsrf=forged' })).status, popup.url().replace(/\?.*$/, ''));
    expect(forged, 'a link POST without the XSRF token').to.equal(403);
    await Promise.all([popup.waitForLoadState('load'), confirm.click()]);
    await linked.waitFor({ timeout: 30_000 });
    expect(new URL(popup.url()).origin).to.equal(hub!.url);
    expect(await linked.textContent()).to.match(/connected to the JupyterHub account ada\b/);
    await shot(popup, 'hub-connect-linked');
    // the session Gofer keeps: on the hub's origin, under the prefix
    const cookies = await context.cookies(`${hub!.url}${hub!.prefix}`);
    const names = cookies.filter((c) => c.path === hub!.prefix).map((c) => c.name);
    expect(names).to.include.members(['gofer-session', '_xsrf']);
    await popup.close();

    await page.goto(assignmentUrl);
    expect(await page.textContent('#hub-user')).to.equal(LEARNER);
    expect(await page.textContent('#identity')).to.equal(`Signed in to JupyterHub as ${LEARNER}.`);
    expect(await page.locator('#connect-hub').count()).to.equal(0);
    expect(await page.locator('#no-submissions').count()).to.equal(1);
  });

  it("a submission with ada's hub token (as gofer_submit sends it, through the hub) is graded and its score reaches the platform's gradebook", async () => {
    const res = await fetch(`${hub!.url}${hub!.prefix}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `token ${token}` },
      body: JSON.stringify({ nb: notebook(1) }),
    });
    const text = await res.text();
    expect(res.status, text).to.equal(200);
    expect(text).to.match(/Your notebook for lab01 was received\b.*Submission [0-9a-f-]{36}\./);
    await waitFor(
      'the score to reach edX',
      async () => {
        await page.reload();
        // "sent", not "being sent"
        return (await page.locator('.submission .passback').first().textContent().catch(() => null)) === 'sent to edX';
      },
      120_000,
      500,
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}; the page says: ${(await body(page)).slice(0, 600)}`);
    });
    expect(await page.textContent('.submission .score')).to.equal('3 / 3 points (100%)');
    expect(await page.textContent('.submission .passback')).to.equal('sent to edX');
    await shot(page, 'hub-linked-assignment');
    expect(published(LEARNER)).to.equal(WEIGHT);
    const score = platform!.lineItems().find((l) => l.resourceLinkId === LAB)!.scores.find((s) => s.userId === 'sub-ada-hub-0001')!;
    expect(score).to.include({ scoreGiven: WEIGHT, scoreMaximum: WEIGHT, activityProgress: 'Completed', gradingProgress: 'FullyGraded' });
  });

  it("hub OAuth for browsers: {prefix}me through the hub shows ada's submissions", async () => {
    await page.goto(`${hub!.url}${hub!.prefix}me`);
    expect(new URL(page.url()).pathname).to.equal(`${hub!.prefix}me`);
    expect(await page.textContent('h1')).to.equal(`Submissions of ${LEARNER}`);
    const rows = page.locator('#submissions > li.submission');
    expect(await rows.count()).to.equal(1);
    const row = (await rows.first().textContent()) ?? '';
    expect(row).to.include('8x / lab01').and.include('graded').and.include('3 / 3 points (100%)');
    expect(await rows.first().locator('.passback').textContent()).to.equal('sent to edX');
    expect(await page.textContent('#identity')).to.equal(`Signed in to JupyterHub as ${LEARNER}.`);
    // the page's script ran (times rewritten in local time) and its status endpoint, through the
    // hub with the same login, answers the same submissions
    await page.waitForSelector('#submissions time[data-local]');
    const status = await page.evaluate(async () => (await fetch(document.querySelector('main')!.dataset.statusUrl!)).json());
    expect((status as { submissions: Array<{ grade: { text: string } }> }).submissions.map((x) => x.grade.text)).to.deep.equal(['3 / 3 points (100%)']);
    await shot(page, 'hub-me');
  });

  /** The hub session's cookies as the browser holds them, for requests from outside the browser. */
  const sessionCookies = async (): Promise<Record<string, string>> =>
    Object.fromEntries((await context.cookies(`${hub!.url}${hub!.prefix}`)).filter((c) => c.path === hub!.prefix).map((c) => [c.name, c.value]));
  /** A cookie-authenticated submit with the given headers, sent as a page on another origin or a script could. */
  const cookiePost = async (nb: unknown, headers: Record<string, string>, cookies?: Record<string, string>) => {
    const jar = cookies ?? (await sessionCookies());
    const cookie = Object.entries(jar).map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(`${hub!.url}${hub!.prefix}`, { method: 'POST', headers: { 'Content-Type': 'application/json', cookie, ...headers }, body: JSON.stringify({ nb }) });
    return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
  };

  it("a cookie-authenticated POST to {prefix} from a page of the hub's own origin needs no XSRF token (the old gofer_submit button): graded as the cookie's owner", async () => {
    // from a page on the hub's origin, as gofer_submit's script sends it: no X-XSRFToken header
    const accepted = await page.evaluate(
      async ({ url, nb }) => {
        const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ nb }), credentials: 'same-origin' });
        return { status: res.status, text: await res.text() };
      },
      { url: hub!.prefix, nb: notebook(2) },
    );
    expect(new URL(page.url()).origin, 'the page the script runs in').to.equal(hub!.url);
    expect(accepted.status, accepted.text).to.equal(200);
    const m = /Your notebook for lab01 was received\b.*Submission ([0-9a-f-]{36})\./.exec(accepted.text);
    expect(m, accepted.text).to.not.equal(null);
    // the cookie's owner is the submission's owner; the REST API on Gofer's own port agrees
    const view = await waitFor(
      'the cookie-authenticated submission to be graded',
      async () => {
        const res = await fetch(`${hub!.goferUrl}/api/v1/submissions/${m![1]}`, { headers: { Authorization: `token ${token}` } });
        const v = (await res.json()) as { owner: string; status: string; points: number };
        return ['queued', 'grading'].includes(v.status) ? undefined : v;
      },
      90_000,
      300,
    );
    expect(view).to.include({ owner: LEARNER, status: 'graded', points: 2 });
    // the REST API gives the grade on the assignment's scale too (points: 3), besides the test points
    expect((view as unknown as { grade: unknown }).grade).to.deep.equal({ given: 3, maximum: 3, text: '3 / 3 points (100%)' });
    // Referer stands in when a browser sends no Origin
    const byReferer = await cookiePost(notebook(4), { Referer: `${hub!.url}/user/${LEARNER}/notebooks/lab01.ipynb` });
    expect(byReferer.status, byReferer.text).to.equal(200);
  });

  it('every other cookie-authenticated POST to {prefix} needs X-XSRFToken equal to the _xsrf cookie: another origin, no origin, or a null origin get 403 with a sentence; the token lets them through', async () => {
    const cookies = await sessionCookies();
    expect(Object.keys(cookies)).to.include.members(['gofer-session', '_xsrf']);
    const elsewhere = platform!.url.replace(/\/$/, '');
    expect(new URL(elsewhere).origin).to.not.equal(hub!.url);
    for (const [what, headers] of [
      ['another origin', { Origin: elsewhere }],
      ["another origin's Referer", { Referer: `${elsewhere}/courses/x` }],
      ['Origin: null with the hub as Referer', { Origin: 'null', Referer: `${hub!.url}/hub/home` }],
      ['no Origin and no Referer', {}],
      ["a Referer on Gofer's own port", { Referer: `${hub!.goferUrl}${hub!.prefix}me` }],
    ] as Array<[string, Record<string, string>]>) {
      const refused = await cookiePost(notebook(5), headers);
      expect(refused.status, `${what}: ${refused.text}`).to.equal(403);
      expect(refused.type).to.match(/^text\/plain/);
      expect(refused.text).to.match(/lacks its XSRF token\. Reload the page and try again\./);
    }
    const withToken = await cookiePost(notebook(5), { Origin: elsewhere, 'X-XSRFToken': cookies._xsrf! });
    expect(withToken.status, withToken.text).to.equal(200);
  });

  it("the XSRF token is bound to the session: an _xsrf cookie and header of anyone's choosing (a tossed cookie) are refused", async () => {
    const cookies = await sessionCookies();
    const tossed = await cookiePost(notebook(3), { Origin: platform!.url.replace(/\/$/, ''), 'X-XSRFToken': 'planted-by-someone' }, { ...cookies, _xsrf: 'planted-by-someone' });
    expect(tossed.status, tossed.text).to.equal(403);
    expect(tossed.text).to.match(/lacks its XSRF token/);
  });

  it('a page link from a launch cannot be replayed as a hub session cookie (values are signed for one purpose)', async () => {
    const s = new URL(assignmentUrl).searchParams.get('l')!;
    const res = await fetch(`${hub!.url}${hub!.prefix}me`, { headers: { cookie: `gofer-session=${s}` }, redirect: 'manual' });
    expect(res.status).to.equal(302);
    expect(res.headers.get('location')).to.match(/login\?next=/);
  });

  /**
   * A browser of its own for a hub user: logged in to the hub with the login form, then opening
   * `{prefix}staff`, which sends it through the hub's OAuth (and its consent page) and back.
   */
  const hubUser = async (name: string): Promise<Page> => {
    const p = await (await browser!.newContext()).newPage();
    await p.goto(`${hub!.url}/hub/login?next=${encodeURIComponent('/hub/home')}`);
    await p.fill('#username_input', name);
    await p.fill('#password_input', 'any password');
    await Promise.all([p.waitForURL(/\/hub\/home/), p.click('#login_submit')]);
    await p.goto(`${hub!.url}${hub!.prefix}staff`);
    const consent = p.locator('form input[type=submit][value="Authorize"]');
    if (new URL(p.url()).pathname === '/hub/api/oauth2/authorize') await Promise.all([p.waitForURL((u) => u.pathname === `${hub!.prefix}staff`), consent.click()]);
    return p;
  };

  it("a course's instructor reaches the staff pages through the hub, for that course only; a learner and another course's instructor see nothing of it", async () => {
    // not logged in to Gofer at first: the hub's OAuth, then back to the list of their courses
    const prof = await hubUser('prof');
    expect(new URL(prof.url()).pathname).to.equal(`${hub!.prefix}staff`);
    expect(await prof.locator('#staff-courses a').allTextContents()).to.deep.equal(['8x']);
    await Promise.all([prof.waitForNavigation(), prof.click('#staff-courses a')]);
    expect(await prof.textContent('h1')).to.equal('Course 8x: overview');
    expect(await prof.locator('tr.grade-row .learner a').allTextContents()).to.deep.equal(['Ada Lovelace']);
    expect(await prof.locator('nav a', { hasText: 'Simple grades list' }).count(), 'the LTI-only page is not linked').to.equal(0);
    // the learner's page and an action: recorded under the hub name
    await Promise.all([prof.waitForNavigation(), prof.click('tr.grade-row .learner a')]);
    const section = prof.locator('section.submission').first();
    await Promise.all([prof.waitForNavigation(), section.locator('button.regrade').click()]);
    expect(new URL(prof.url()).pathname).to.equal(`${hub!.prefix}staff/learner`);
    expect(await prof.locator('#actions tr.action-regrade .actor').first().textContent()).to.equal('prof');
    await shot(prof, 'hub-staff');
    // a form without the page's token does nothing
    const forged = await prof.evaluate(async (u) => (await fetch(u, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'l=8x&csrf=forged&submission=x' })).status, `${hub!.prefix}staff/resend`);
    expect(forged).to.equal(403);

    // the learner (logged in through the hub in the other browser) and the other course's instructor get 403
    const bob = await hubUser('bob');
    for (const [who, p] of [[LEARNER, page], ['bob', bob]] as const) {
      for (const path of ['staff?l=8x', `staff/learner?l=8x&owner=${LEARNER}`]) {
        const res = await p.goto(`${hub!.url}${hub!.prefix}${path}`);
        expect(res!.status(), `${who}: ${path}`).to.equal(403);
        expect(await body(p), `${who}: ${path}`).to.include('Only course staff may open this page.').and.not.include('3 / 3 points');
      }
    }
    await bob.goto(`${hub!.url}${hub!.prefix}staff`);
    expect(await bob.locator('#staff-courses a').allTextContents()).to.deep.equal(['other']);
    await Promise.all([bob.waitForNavigation(), bob.click('#staff-courses a')]);
    expect(await bob.locator('tr.grade-row').count()).to.equal(0);
  });

  it('logout revokes the session on the server: a copy of the session cookie no longer works', async () => {
    const session = (await context.cookies(`${hub!.url}${hub!.prefix}`)).find((c) => c.name === 'gofer-session')!;
    const me = (cookie: string) => fetch(`${hub!.url}${hub!.prefix}me`, { headers: { cookie }, redirect: 'manual' });
    expect((await me(`gofer-session=${session.value}`)).status, 'the copied cookie works before the logout').to.equal(200);
    await page.goto(`${hub!.url}${hub!.prefix}logout`);
    expect(await body(page)).to.match(/logged out of Gofer/);
    const after = await me(`gofer-session=${session.value}`);
    expect(after.status).to.equal(302);
    expect(after.headers.get('location')).to.match(/login\?next=/);
  });
});
