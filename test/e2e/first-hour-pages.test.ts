import { expect } from 'chai';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { launchBrowser } from '../helpers/lti.js';
import { freePort, spawnGofer, waitFor, type GoferProcess } from '../helpers/process.js';
import { writeConfig } from '../helpers/service.js';

/**
 * The first pages a course team opens: Gofer's landing page at `/` (what it serves, its health,
 * the docs, the dev platform), `{prefix}me` without a hub, and the dev platform's home with the
 * launch links first. A real `gofer serve` with the dev platform beside it; no grading workers.
 */
describe('the first pages: landing page, {prefix}me without a hub, the dev platform home', function () {
  this.timeout(180_000);
  let serve: GoferProcess | undefined;
  let browser: Browser | undefined;
  let gofer: string;
  let platform: string;

  before(async () => {
    const [port, platformPort] = [await freePort(), await freePort()];
    gofer = `http://127.0.0.1:${port}`;
    platform = `http://127.0.0.1:${platformPort}`;
    const { file, dir } = writeConfig({ server: { host: '127.0.0.1', port }, queue: { workers: 0 }, lti: { development: true }, devPlatform: { enabled: true, port: platformPort } });
    serve = spawnGofer(['--config', file, 'serve', '--workers', '0'], path.join(dir, 'serve.log'), { JUPYTERHUB_API_TOKEN: '', JUPYTERHUB_API_URL: '' });
    await waitFor('gofer serve and its dev platform to answer', async () => (await fetch(`${gofer}/health`).catch(() => undefined))?.ok && (await fetch(`${platform}/`).catch(() => undefined))?.ok, 90_000);
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    serve?.child.kill('SIGTERM');
    await serve?.exited;
  });

  it('/ says what this Gofer serves and how healthy it is, links the docs, and leads to the dev platform', async () => {
    const page = await browser!.newPage();
    const res = await page.goto(`${gofer}/`);
    expect(res?.status()).to.equal(200);
    expect(await page.textContent('#what')).to.equal('This Gofer grades Jupyter notebooks for 1 course(s) with 2 assignment(s): 8x.');
    const health = await page.textContent('#health');
    expect(health).to.include('Status: ok').and.include('Database: up').and.include('Docker engine: not used').and.include('0 waiting');
    const docs = await page.$$eval('#docs a', (as) => as.map((a) => a.textContent));
    expect(docs).to.include('configuration.md').and.include('edx.md');
    await page.click('#docs a:text-is("configuration.md")');
    expect(await page.textContent('body')).to.match(/^# Configuration/);
    await page.goto(`${gofer}/`);
    await page.click('#dev-platform a');
    expect(page.url()).to.equal(`${platform}/`);
    await page.close();
  });

  it('/docs serves only the docs listed, never another path', async () => {
    for (const bad of ['/docs/..%2Fpackage.json', '/docs/%2E%2E%2FREADME.md', '/docs/nope.md']) {
      expect((await fetch(`${gofer}${bad}`)).status, bad).to.equal(404);
    }
  });

  it('{prefix}me without a hub says there is no sign-in here and where to look instead', async () => {
    const page = await browser!.newPage();
    const res = await page.goto(`${gofer}/services/gofer/me`);
    expect(res?.status()).to.equal(404);
    expect(await page.textContent('#no-hub')).to.match(/not connected to a JupyterHub, so there is no sign-in here\. Open your assignment from your course/);
    await page.close();
  });

  it("the dev platform's home puts the launch links first, the LTI details folded below them", async () => {
    const page = await browser!.newPage();
    await page.goto(`${platform}/`);
    const order = await page.$eval('section', (s) => [...s.children].map((c) => c.tagName.toLowerCase()));
    expect(order.slice(0, 2)).to.deep.equal(['h2', 'ul']);
    expect(order).to.include('details');
    expect(await page.isVisible('section table')).to.equal(false);
    await page.click('section a:text-is("Launch as ada")');
    await page.waitForLoadState('load');
    expect(page.url()).to.not.equal(`${platform}/`);
    await page.close();
  });
});
