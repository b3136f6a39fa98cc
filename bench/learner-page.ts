/**
 * Time from an upload on the learner's assignment page to its score shown on that page, without
 * reloading, against the grading itself in the same run.
 *
 *   npm run bench:learner-page -- [--n 5]
 *
 * Set-up (not timed): the dev platform (edX-like) with one component, a `gofer serve` process
 * with one grading worker on the real engine, Chromium launched at the assignment page.
 *
 * Timed, N times one after the other (an idle queue each time): the example notebook (a new
 * variant each time, so none is a duplicate) chosen in the page's form, then from the click on
 * Submit to the moment the new submission's score is in the page (the page's own script posts
 * the upload and follows the status endpoint; the bench watches the DOM on every frame).
 * Baseline: for the same submissions, received_at → graded_at in Gofer's database, the time
 * grading took on the server; the difference is what the page adds (the upload, the polling
 * interval, the rendering).
 *
 * Reported: the median and each run of both, and the median difference. Exit 0 when the bench
 * ran, 1 on an error.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config/load.js';
import { createDb } from '../src/db/knex.js';
import { devPlatformConfig } from '../src/dev-platform/demo.js';
import { startDevPlatform, type DevComponent } from '../src/dev-platform/index.js';
import { POLL_MS } from '../src/web/learner-page.js';
import { launchBrowser } from '../test/helpers/lti.js';
import { freePort, spawnGofer, waitFor } from '../test/helpers/process.js';
import { EXAMPLE_TESTS, ROOT, writeConfig } from '../test/helpers/service.js';

const { values } = parseArgs({ options: { n: { type: 'string', default: '5' } } });
const N = Number(values.n);
const COURSE_KEY = 'course-v1:GoferX+Bench+2026';
const LAB = 'block-v1:GoferX+Bench+2026+type@lti_consumer+block@lab01';
const EXAMPLE = readFileSync(path.join(ROOT, 'config/example/lab01/lab01.ipynb'), 'utf8');

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const seconds = (ms: number): string => (ms / 1000).toFixed(2);

async function main(): Promise<void> {
  const port = await freePort();
  const toolUrl = `http://127.0.0.1:${port}`;
  const tool = { loginUrl: `${toolUrl}/lti/login`, launchUrl: `${toolUrl}/lti`, keysetUrl: `${toolUrl}/lti/keys` };
  const components: DevComponent[] = [
    { usageKey: LAB, configId: 'cfg-bench', clientId: 'client-bench', name: 'Lab 01', weight: 3, graded: true, acceptGradesPastDue: true, custom: ['assignment=lab01'], agsMode: 'declarative', tool },
  ];
  const platform = await startDevPlatform({
    courseKey: COURSE_KEY,
    courseTitle: 'Bench',
    components,
    users: [{ username: 'ada', sub: 'sub-ada-bench', name: 'Ada Lovelace', email: 'ada@example.edu', role: 'learner', sharePii: true }],
  });
  const { file, dir } = writeConfig({
    server: { host: '127.0.0.1', port, submissionsPerMinute: 100 },
    queue: { workers: 1, pollMs: 100 },
    lti: { development: true, hubUserClaim: 'sub', platforms: [devPlatformConfig(platform, components)] },
    courses: [{ id: '8x', contexts: [COURSE_KEY], assignments: [{ id: 'lab01', tests: EXAMPLE_TESTS, files: ['data.csv'], points: 3, timeoutSeconds: 60 }] }],
  });
  const gofer = spawnGofer(['--config', file, 'serve'], path.join(dir, 'gofer.log'));
  const db = createDb(loadConfig(file, {}));
  const browser = await launchBrowser();
  try {
    await waitFor('gofer to answer /health', async () => (await fetch(`${toolUrl}/health`)).ok, 60_000);
    const page = await browser.newPage();
    await page.goto(platform.launchUrl('ada', LAB));
    await page.waitForURL(/\/app\/assignment\?l=/);
    const shown: number[] = [];
    const graded: number[] = [];
    for (let i = 1; i <= N; i++) {
      const nb = JSON.parse(EXAMPLE);
      nb.cells.push({ cell_type: 'code', id: `bench${i}`, metadata: {}, execution_count: null, outputs: [], source: `run = ${i}` });
      const p = path.join(dir, `bench${i}.ipynb`);
      writeFileSync(p, JSON.stringify(nb));
      await page.setInputFiles('#upload input[type=file]', p);
      const navigations = { n: 0 };
      const count = () => navigations.n++;
      page.on('framenavigated', count);
      const started = Date.now();
      await page.click('#upload button');
      await page.waitForFunction(
        (n) => {
          const li = document.querySelector('#submissions > li.submission:first-child') as HTMLElement | null;
          return li?.dataset.step === 'result' && li.querySelector('h3')?.textContent?.startsWith(`Submission ${n},`) && li.querySelector('.score') !== null;
        },
        i,
        { timeout: 180_000, polling: 'raf' },
      );
      shown.push(Date.now() - started);
      page.off('framenavigated', count);
      if (navigations.n) throw new Error(`run ${i}: the page navigated ${navigations.n} times; it must update in place`);
      const row = await db('submissions').where({ owner: 'sub-ada-bench' }).orderBy('received_at', 'desc').first();
      graded.push(Number(row.graded_at) - Number(row.received_at));
      process.stdout.write(`run ${i}: shown after ${seconds(shown.at(-1)!)} s (graded on the server in ${seconds(graded.at(-1)!)} s)\n`);
    }
    const added = shown.map((s, i) => s - graded[i]!);
    process.stdout.write(
      [
        `learner page, upload → score shown without reloading (poll every ${POLL_MS} ms), median of ${N}: ${seconds(median(shown))} s  [${shown.map(seconds).join(', ')}]`,
        `baseline, received → graded in the database, same submissions: ${seconds(median(graded))} s  [${graded.map(seconds).join(', ')}]`,
        `what the page adds (median of the differences): ${seconds(median(added))} s`,
      ].join('\n') + '\n',
    );
  } finally {
    await browser.close();
    await db.destroy();
    gofer.child.kill('SIGTERM');
    await gofer.exited;
    await platform.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
