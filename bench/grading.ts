/**
 * Grading throughput and overhead, against the naive baseline in the same run.
 *
 *   npm run bench:grading -- [--n 16] [--parallel 4] [--image gofer/grader:latest]
 *
 * Gofer: N copies of a trivial one-cell notebook graded through ContainerRunner (locked-down
 * container, harness sent in, privilege drop, kernel, one test). Baseline: a fresh
 * `docker run --rm -i --network none IMAGE` executing the same notebook with nbclient and
 * nothing else. Both run one at a time and `--parallel` at a time.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import Docker from 'dockerode';
import { gradingSchema } from '../src/config/schema.js';
import { ContainerRunner } from '../src/grading/container-runner.js';
import { gradeNotebook, readAssignment } from '../src/grading/grader.js';
import { silentLogger } from '../src/lib/logger.js';

const { values } = parseArgs({
  options: { n: { type: 'string', default: '16' }, parallel: { type: 'string', default: '4' }, image: { type: 'string', default: 'gofer/grader:latest' } },
});
const N = Number(values.n);
const PARALLEL = Number(values.parallel);
const IMAGE = values.image!;

const NOTEBOOK = JSON.stringify({
  nbformat: 4,
  nbformat_minor: 5,
  metadata: { kernelspec: { name: 'python3', display_name: 'Python 3', language: 'python' } },
  cells: [{ cell_type: 'code', id: 'c1', metadata: {}, execution_count: null, outputs: [], source: 'x = 1' }],
});

const BASELINE_PY = [
  'import sys, nbformat',
  'from nbclient import NotebookClient',
  'nb = nbformat.reads(sys.stdin.read(), as_version=4)',
  'NotebookClient(nb, timeout=60, kernel_name="python3").execute()',
  'print("ok")',
].join('\n');

function baselineOnce(): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn('docker', ['run', '--rm', '-i', '--network', 'none', '-e', 'PYDEVD_DISABLE_FILE_VALIDATION=1', IMAGE, 'python3', '-c', BASELINE_PY], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => (code === 0 && out.includes('ok') ? resolve(performance.now() - started) : reject(new Error(`baseline failed: ${err.slice(-500)}`))));
    child.stdin.end(NOTEBOOK);
  });
}

async function pool<T>(n: number, parallel: number, task: () => Promise<T>): Promise<{ seconds: number; results: T[] }> {
  const results: T[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < n) {
        next++;
        results.push(await task());
      }
    }),
  );
  return { seconds: (performance.now() - started) / 1000, results };
}

async function main(): Promise<void> {
  const docker = new Docker();
  const runner = new ContainerRunner(docker, silentLogger());
  await runner.checkReady(IMAGE);
  const dir = mkdtempSync(path.join(tmpdir(), 'gofer-bench-'));
  mkdirSync(path.join(dir, 'tests'));
  writeFileSync(path.join(dir, 'tests', 'q1.py'), "test = {'name': 'q1', 'suites': [{'cases': [{'code': '>>> x\\n1'}], 'setup': '', 'teardown': '', 'type': 'doctest'}]}\n");
  const assignment = await readAssignment(path.join(dir, 'tests'));
  const limits = gradingSchema.parse({ timeoutSeconds: 60 });
  const notebook = Buffer.from(NOTEBOOK);

  const gofer = async (): Promise<{ ms: number; notebookMs: number; executionMs: number }> => {
    const started = performance.now();
    const r = await gradeNotebook(runner, { notebook, policy: 'gofer', image: IMAGE, limits, ...assignment });
    if (r.status !== 'graded' || r.score !== 1) throw new Error(`gofer graded wrongly: ${JSON.stringify(r)}`);
    const t = r.timing ?? {};
    // the notebook's execution: kernel start-up, its cells, and its tests
    const executionMs = (t.kernelStartMs ?? 0) + (t.notebookMs ?? 0) + (t.testsMs ?? 0);
    return { ms: performance.now() - started, notebookMs: t.notebookMs ?? 0, executionMs };
  };

  // warm both paths once (page cache, image layers)
  await baselineOnce();
  await gofer();

  const rows: string[] = [];
  const report: Record<string, number> = {};
  for (const parallel of [1, PARALLEL]) {
    const base = await pool(N, parallel, baselineOnce);
    const ours = await pool(N, parallel, gofer);
    const baseRate = N / base.seconds;
    const ourRate = N / ours.seconds;
    const baseMean = base.results.reduce((a, b) => a + b, 0) / N;
    const ourMean = ours.results.reduce((a, b) => a + b.ms, 0) / N;
    const nbMean = ours.results.reduce((a, b) => a + b.notebookMs, 0) / N;
    const execMean = ours.results.reduce((a, b) => a + b.executionMs, 0) / N;
    report[`p${parallel}_baseline_nb_per_s`] = baseRate;
    report[`p${parallel}_gofer_nb_per_s`] = ourRate;
    report[`p${parallel}_vs_baseline_s`] = (ourMean - baseMean) / 1000;
    report[`p${parallel}_overhead_beyond_execution_s`] = (ourMean - execMean) / 1000;
    rows.push(
      `parallel ${parallel}: baseline ${baseRate.toFixed(2)} nb/s (mean ${(baseMean / 1000).toFixed(2)} s) | ` +
        `gofer ${ourRate.toFixed(2)} nb/s (mean ${(ourMean / 1000).toFixed(2)} s, notebook cells ${(nbMean / 1000).toFixed(3)} s) | ` +
        `ratio ${(ourRate / baseRate).toFixed(2)} | gofer minus baseline ${((ourMean - baseMean) / 1000).toFixed(2)} s/notebook | ` +
        `gofer overhead beyond kernel+cells+tests ${((ourMean - execMean) / 1000).toFixed(2)} s/notebook`,
    );
  }
  console.log(`bench/grading: ${N} notebooks, image ${IMAGE}`);
  for (const r of rows) console.log(r);
  console.log(JSON.stringify(report));
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
