/**
 * The Submit button, idle: time from the click to the score shown in the button's dialog, for
 * the example notebook (config/example/lab01), in the classic Notebook 6 under a real JupyterHub.
 *
 *   npm run bench:button -- [--rounds 5]
 *
 * Everything is real and on loopback: extensions/jupyter_gofer pip-installed into a prefix, the
 * hub (Debian's 3.0) spawning the learner's server with it, Gofer as the hub's managed service with
 * one grading worker and the Docker engine, Chromium. Each round adds a distinct cell (so no round
 * is a duplicate of another), clicks Submit, and stops the clock when the dialog's headline shows
 * the score; the dialog polls once a second, as it does for learners.
 *
 * Baseline, in the same run and interleaved: the same notebook (a distinct cell each round) posted
 * through the hub's proxy with the learner's hub token, as a script would, then the REST API on
 * Gofer's own address polled every 50 ms until graded: how long Gofer itself takes, without the
 * browser, the save, the server extension or the dialog's 1 s polling.
 *
 * Prints each round and the medians. Exit code 0 when the bench ran, 1 on an error.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { addClassicCell, installButton, openClassicNotebook, startButtonHub } from '../test/helpers/button.js';
import { requireEngine } from '../test/helpers/engine.js';
import { freePort, requireJupyterHub, type Hub } from '../test/helpers/hub.js';
import { launchBrowser } from '../test/helpers/lti.js';
import { EXAMPLE_TESTS, ROOT, writeConfig } from '../test/helpers/service.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' } } });
const rounds = Number(values.rounds);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds must be a positive whole number, not ${values.rounds}`);

const LEARNER = 'ada';
const EXAMPLE = readFileSync(path.join(ROOT, 'config/example/lab01/lab01.ipynb'), 'utf8');

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function direct(hub: Hub, token: string, i: number): Promise<number> {
  const nb = JSON.parse(EXAMPLE) as { cells: unknown[] };
  nb.cells.push({ cell_type: 'code', id: `bench-direct-${i}`, metadata: {}, execution_count: null, outputs: [], source: `# baseline round ${i}` });
  const started = performance.now();
  const res = await fetch(`${hub.url}${hub.prefix}`, { method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json', Authorization: `token ${token}` }, body: JSON.stringify({ nb }) });
  if (res.status !== 200) throw new Error(`baseline submit answered ${res.status}: ${await res.text()}`);
  const { id } = (await res.json()) as { id: string };
  for (;;) {
    const s = (await (await fetch(`${hub.goferUrl}/api/v1/submissions/${id}`, { headers: { Authorization: `token ${token}` } })).json()) as { status: string };
    if (s.status === 'graded') return performance.now() - started;
    if (!['queued', 'grading'].includes(s.status)) throw new Error(`baseline submission ended ${s.status}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function main(): Promise<void> {
  requireJupyterHub();
  await requireEngine();
  const installed = await installButton();
  const goferPort = await freePort();
  const { file, dir } = writeConfig({
    server: { host: '127.0.0.1', port: goferPort, submissionsPerMinute: 100 },
    queue: { workers: 1, pollMs: 100 },
    courses: [{ id: '8x', instructors: [], assignments: [{ id: 'lab01', aliases: ['1'], section: '1', tests: EXAMPLE_TESTS, files: ['data.csv'], policy: 'gofer', points: 3, timeoutSeconds: 60 }] }],
  });
  const { hub } = await startButtonHub({ dir, goferConfig: file, goferPort, learners: [LEARNER], notebooks: { 'lab01.ipynb': EXAMPLE } }, installed);
  const browser = await launchBrowser();
  try {
    const token = await hub.userWithToken(LEARNER);
    const page = await (await browser.newContext()).newPage();
    await openClassicNotebook(page, hub, LEARNER, 'lab01.ipynb');
    // one unmeasured round of each warms the grader image's page cache and the server extension
    await direct(hub, token, 0);
    const button: number[] = [];
    const baseline: number[] = [];
    for (let i = 0; i <= rounds; i++) {
      await addClassicCell(page, `# button round ${i}`);
      const started = performance.now();
      await page.click('#gofer-submit');
      const headline = page.locator('.gofer-dialog [data-gofer-state="graded"]');
      await headline.waitFor({ timeout: 120_000 });
      const ms = performance.now() - started;
      const text = (await headline.textContent()) ?? '';
      if (!/^Score: 3 \/ 3 points/.test(text)) throw new Error(`round ${i}: the dialog says "${text}"`);
      await page.click('.modal-footer button');
      await page.locator('.gofer-dialog').waitFor({ state: 'detached', timeout: 10_000 });
      if (i === 0) continue; // warm-up
      button.push(ms);
      const b = await direct(hub, token, i);
      baseline.push(b);
      console.log(`round ${i}: button ${(ms / 1000).toFixed(2)} s (click to score in the dialog), baseline ${(b / 1000).toFixed(2)} s (POST to graded)`);
    }
    console.log(`\nmedian of ${rounds}: button ${(median(button) / 1000).toFixed(2)} s; baseline ${(median(baseline) / 1000).toFixed(2)} s; the button adds ${((median(button) - median(baseline)) / 1000).toFixed(2)} s`);
  } finally {
    await browser.close();
    await hub.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
