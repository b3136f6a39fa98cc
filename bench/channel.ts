/**
 * What the trusted evaluator's channel costs a typical assignment, against the same notebook
 * graded with the tests run inside the learner's kernel, in the same run.
 *
 *   git show 0c920f2:docker/harness/harness.py > /tmp/in-kernel-harness.py
 *   npm run bench:channel -- --baseline /tmp/in-kernel-harness.py [--n 8] [--image gofer/grader:latest]
 *
 * The notebook builds numpy arrays and a pandas DataFrame; 10 test files read them (sums,
 * shapes, `np.isclose`, column lists, a learner function called on values). The baseline is the
 * harness of the last commit whose tests ran in the kernel (same kernel driving, no evaluator).
 * Both grade N times, one at a time, alternating; the figures are medians of whole gradings and
 * of the harness's own `testsMs`.
 */
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import Docker from 'dockerode';
import { gradingSchema } from '../src/config/schema.js';
import { ContainerRunner } from '../src/grading/container-runner.js';
import { gradeNotebook, readAssignment } from '../src/grading/grader.js';
import { silentLogger } from '../src/lib/logger.js';

const { values } = parseArgs({
  options: { n: { type: 'string', default: '8' }, image: { type: 'string', default: 'gofer/grader:latest' }, baseline: { type: 'string' } },
});
if (!values.baseline) {
  console.error('--baseline <in-kernel harness.py> is required (see the comment at the top of bench/channel.ts)');
  process.exit(2);
}
const N = Number(values.n);
const IMAGE = values.image!;

const CELLS = [
  'import numpy as np\nimport pandas as pd',
  'rng = np.random.default_rng(0)\narr = rng.normal(size=1000)\nmatrix = np.arange(100).reshape(10, 10)\ndf = pd.DataFrame({"a": range(200), "b": rng.normal(size=200), "c": ["x", "y"] * 100})\ndef mean(v):\n    return sum(v) / len(v)',
];
const CASES = [
  '>>> round(float(arr.sum()), 6) == round(float(np.sum(arr)), 6)\nTrue',
  '>>> matrix.shape\n(10, 10)',
  '>>> int(matrix.trace())\n495',
  '>>> df.shape\n(200, 3)',
  '>>> list(df.columns)\n[\'a\', \'b\', \'c\']',
  '>>> int(df["a"].sum())\n19900',
  '>>> np.isclose(mean([1, 2, 3]), 2.0)\nTrue',
  '>>> sorted(df["c"].unique())\n[\'x\', \'y\']',
  '>>> bool((df["b"] == df["b"]).all())\nTrue',
  '>>> np.isclose(mean(list(arr[:10])), float(np.mean(arr[:10])))\nTrue',
];

function notebook(): Buffer {
  return Buffer.from(
    JSON.stringify({
      nbformat: 4,
      nbformat_minor: 5,
      metadata: { kernelspec: { name: 'python3', display_name: 'Python 3', language: 'python' } },
      cells: CELLS.map((source, i) => ({ cell_type: 'code', id: `c${i}`, metadata: {}, execution_count: null, outputs: [], source })),
    }),
  );
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const docker = new Docker();
  const runners = {
    evaluator: new ContainerRunner(docker, silentLogger()),
    'in-kernel': new ContainerRunner(docker, silentLogger(), { harnessSource: readFileSync(values.baseline!) }),
  };
  await runners.evaluator.checkReady(IMAGE);
  const dir = mkdtempSync(path.join(tmpdir(), 'gofer-bench-channel-'));
  mkdirSync(path.join(dir, 'tests'));
  CASES.forEach((code, i) =>
    writeFileSync(path.join(dir, 'tests', `q${i + 1}.py`), `test = {'name': 'q${i + 1}', 'suites': [{'cases': [{'code': ${JSON.stringify(code)}}], 'setup': '', 'teardown': '', 'type': 'doctest'}]}\n`),
  );
  const tests = await readAssignment(path.join(dir, 'tests'));
  const limits = gradingSchema.parse({ timeoutSeconds: 60 });
  const figures: Record<string, { total: number[]; tests: number[] }> = { evaluator: { total: [], tests: [] }, 'in-kernel': { total: [], tests: [] } };
  for (let i = 0; i < N + 1; i++) {
    for (const [name, runner] of Object.entries(runners)) {
      const started = performance.now();
      const r = await gradeNotebook(runner, { notebook: notebook(), policy: 'otter', image: IMAGE, limits, ...tests });
      if (r.status !== 'graded' || r.score !== 1) throw new Error(`${name}: ${r.status} ${r.score} ${JSON.stringify(r.tests)}`);
      if (i === 0) continue; // warm-up
      figures[name]!.total.push((performance.now() - started) / 1000);
      figures[name]!.tests.push((r.timing?.testsMs ?? 0) / 1000);
    }
  }
  const e = figures.evaluator!;
  const k = figures['in-kernel']!;
  console.log(`${N} gradings each, 10 tests on numpy and pandas values, medians:`);
  console.log(`  in-kernel tests (baseline): ${median(k.total).toFixed(3)} s a notebook, tests ${median(k.tests).toFixed(3)} s`);
  console.log(`  trusted evaluator:          ${median(e.total).toFixed(3)} s a notebook, tests ${median(e.tests).toFixed(3)} s`);
  console.log(`  cost of the channel: ${(((median(e.total) - median(k.total)) / median(k.total)) * 100).toFixed(1)} % of a whole grading`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
