import { expect } from 'chai';
import path from 'node:path';
import { hostname } from 'node:os';
import type { Browser } from 'playwright-core';
import { loadConfig } from '../../src/config/load.js';
import { createDb, type Db } from '../../src/db/knex.js';
import { devPlatformConfig, toolEndpoints } from '../../src/dev-platform/demo.js';
import { startDevPlatform, type DevComponent, type DevPlatform } from '../../src/dev-platform/index.js';
import { requireEngine } from '../helpers/engine.js';
import { ARTIFACTS, launchBrowser } from '../helpers/lti.js';
import { freePort, spawnGofer, waitFor, type GoferProcess } from '../helpers/process.js';
import { EXAMPLE_TESTS, writeConfig } from '../helpers/service.js';

/**
 * The staff page lists the grading hosts that went quiet: a real `gofer worker` beats, is
 * killed with SIGKILL (its row stays, as when a host dies), and once its heartbeat is older
 * than three intervals the instructor's course page shows it, with its engine and when it was
 * last seen; `gofer serve`'s own workers, still beating, are not listed.
 */
const COURSE_KEY = 'course-v1:GoferX+Quiet+2026';
const LAB = 'block-v1:GoferX+Quiet+2026+type@lti_consumer+block@lab01';

describe('the staff page shows grading hosts that went quiet (real worker processes, Chromium)', function () {
  this.timeout(180_000);
  let browser: Browser;
  let platform: DevPlatform;
  let db: Db;
  let dir: string;
  const procs: GoferProcess[] = [];

  before(async () => {
    await requireEngine();
    browser = await launchBrowser();
  });

  after(async () => {
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await Promise.all(procs.map((p) => p.exited));
    await db?.destroy();
    await browser?.close();
    await platform?.stop();
  });

  it('lists a worker whose heartbeat stopped, with its engine and last-seen time, and not one that beats', async () => {
    const port = await freePort();
    const toolUrl = `http://127.0.0.1:${port}`;
    const tool = toolEndpoints(toolUrl);
    const components: DevComponent[] = [
      { usageKey: LAB, configId: 'cfg-lab01', clientId: 'client-lab01', name: 'Lab 01', weight: 1, graded: true, acceptGradesPastDue: true, custom: ['assignment=lab01'], agsMode: 'declarative', tool },
    ];
    platform = await startDevPlatform({
      courseKey: COURSE_KEY,
      courseTitle: 'Quiet',
      components,
      users: [{ username: 'prof', sub: 'sub-prof-0001', name: 'Grace Hopper', email: 'prof@example.edu', role: 'staff', sharePii: true }],
    });
    let file: string;
    ({ file, dir } = writeConfig({
      server: { host: '127.0.0.1', port },
      queue: { workers: 1, pollMs: 100, heartbeatSeconds: 1 },
      lti: { development: true, hubUserClaim: 'sub', platforms: [devPlatformConfig(platform, components)] },
      courses: [{ id: '8x', contexts: [COURSE_KEY], assignments: [{ id: 'lab01', section: '1', tests: EXAMPLE_TESTS, files: ['data.csv'] }] }],
    }));
    db = createDb(loadConfig(file, {}));
    const serve = spawnGofer(['--config', file, 'serve'], path.join(dir, 'serve.log'));
    procs.push(serve);
    await waitFor('gofer serve to answer /health', async () => (await fetch(`${toolUrl}/health`)).ok, 60_000);
    const worker = spawnGofer(['--config', file, 'worker', '--workers', '1'], path.join(dir, 'worker.log'));
    procs.push(worker);
    const workerId = `${hostname()}/${worker.child.pid}`;
    const serveId = `${hostname()}/${serve.child.pid}`;
    await waitFor('the worker\'s heartbeat', async () => !!(await db('worker_heartbeats').where({ id: workerId }).first()), 60_000, 200);

    const page = await browser.newPage();
    await page.goto(platform.launchUrl('prof', LAB));
    await page.waitForLoadState('networkidle');
    await Promise.all([page.waitForNavigation(), page.click('#course-page')]);
    expect(await page.locator('#quiet-hosts').count(), 'no host is quiet while both beat').to.equal(0);

    worker.child.kill('SIGKILL');
    await worker.exited;
    const row = (await db('worker_heartbeats').where({ id: workerId }).first()) as { engine: string; seen_at: string };
    await waitFor(
      'the killed worker to be listed as quiet',
      async () => {
        await page.reload();
        return (await page.locator('#quiet-hosts tr.quiet-host').count()) > 0;
      },
      30_000,
      500,
    );
    const listed = await page.locator('#quiet-hosts tr.quiet-host').allTextContents();
    expect(listed, 'only the killed worker').to.have.length(1);
    expect(listed[0]).to.include(workerId).and.include(row.engine).and.include(new Date(Number(row.seen_at)).toISOString());
    expect(listed.join('\n')).to.not.include(serveId);
    // serve's own worker has a row too (it beats), which the page leaves out
    expect(await db('worker_heartbeats').where({ id: serveId }).first(), 'serve beats').to.not.equal(undefined);
    await page.screenshot({ path: path.join(ARTIFACTS, 'staff-quiet-hosts.png'), fullPage: true });
    await page.close();
  });
});
