import { expect } from 'chai';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gradingSchema, type Policy } from '../../src/config/schema.js';
import type { ContainerRunner } from '../../src/grading/container-runner.js';
import { readAssignment } from '../../src/grading/grader.js';
import type { GradingResult, TestResult } from '../../src/grading/result.js';
import { IMAGE, requireEngine, RUNNER_MODES, gradeIn } from '../helpers/engine.js';
import { notebookBytes, okTest } from '../helpers/notebooks.js';

/**
 * Pins both scoring policies against the rules of gofer-lineage.md, on a real kernel in a real
 * container: multi-case files, list points, missing points, hidden cases, failing cells,
 * undefined answers, and the output of floats, printed text, strings, None, numpy and pandas.
 */
const NOTEBOOK = notebookBytes([
  'import numpy as np\nimport pandas as pd',
  'x = 3.5\ns = "hello"\nnothing = None\narr = np.array([1, 2, 3])\ndf = pd.DataFrame({"a": [1, 2]})',
  'def greet():\n    print("hi there")',
  '1 / 0  # a cell that raises does not stop the next ones',
  'later = "ran"',
  'def double(n):\n    return n * 2',
]);

const TESTS: Record<string, string> = {
  float: okTest({ name: 'float', cases: [{ code: '>>> x\n3.5' }, { code: '>>> x * 2\n7.0' }] }),
  printed: okTest({ name: 'printed', cases: [{ code: '>>> greet()\nhi there' }] }),
  string: okTest({ name: 'string', okFormat: true, cases: [{ code: ">>> s\n'hello'", hidden: false }] }),
  none: okTest({ name: 'none', cases: [{ code: '>>> nothing' }, { code: '>>> print(nothing)\nNone' }] }),
  numpy: okTest({ name: 'numpy', cases: [{ code: '>>> arr\narray([1, 2, 3])' }, { code: '>>> arr.sum()\n6' }] }),
  pandas: okTest({ name: 'pandas', cases: [{ code: '>>> df\n   a\n0  1\n1  2' }, { code: ">>> list(df['a'])\n[1, 2]" }] }),
  later: okTest({ name: 'later', cases: [{ code: ">>> later\n'ran'" }] }),
  undefined: okTest({ name: 'undefined', cases: [{ code: '>>> missing_answer\n42', hidden: false }] }),
  // one namespace per case: a name assigned in case 1 is not visible in case 2
  isolation: okTest({ name: 'isolation', okFormat: true, points: 2, cases: [{ code: '>>> y = 5\n>>> y\n5', hidden: false }, { code: ">>> 'y' in dir()\nFalse", hidden: false }] }),
  listpoints: okTest({
    name: 'listpoints',
    okFormat: true,
    points: [1, 2, 3],
    cases: [{ code: '>>> double(1)\n2', hidden: false }, { code: '>>> double(2)\n5', hidden: false }, { code: '>>> double(3)\n6', hidden: false }],
  }),
  nopoints: okTest({
    name: 'nopoints',
    okFormat: true,
    cases: [1, 2, 3, 4].map((n) => ({ code: `>>> double(${n})\n${n === 4 ? 0 : 2 * n}`, hidden: false })),
  }),
  split: okTest({
    name: 'split',
    okFormat: true,
    points: 4,
    cases: [{ code: '>>> double(1)\n2', points: 1, hidden: false }, { code: '>>> double(1)\n3', hidden: false }, { code: '>>> double(2)\n4', hidden: false }],
  }),
  casepoints: okTest({ name: 'casepoints', okFormat: true, cases: [{ code: '>>> x\n3.5', points: 2, hidden: false }, { code: '>>> x\n3.5', hidden: false }] }),
  // otter: a case without `hidden` is hidden
  hiddenfail: okTest({ name: 'hiddenfail', okFormat: true, points: 2, cases: [{ code: '>>> x\n3.5', hidden: false }, { code: '>>> double(10)\n21' }] }),
  allornothing: okTest({ name: 'allornothing', okFormat: true, points: 2, allOrNothing: true, cases: [{ code: '>>> x\n3.5', hidden: false }, { code: '>>> x\n4.0', hidden: false }] }),
  allhidden: okTest({ name: 'allhidden', okFormat: true, cases: [{ code: '>>> double(4)\n8', hidden: true }] }),
};

/** name -> [points, maxPoints, passed] */
const OTTER: Record<string, [number, number, boolean]> = {
  float: [1, 1, true],
  printed: [1, 1, true],
  string: [1, 1, true],
  none: [1, 1, true],
  numpy: [1, 1, true],
  pandas: [1, 1, true],
  later: [1, 1, true],
  undefined: [0, 1, false],
  isolation: [2, 2, true],
  listpoints: [4, 6, false],
  nopoints: [0.75, 1, false],
  split: [2.5, 4, false],
  casepoints: [2, 2, true],
  hiddenfail: [1, 2, false],
  allornothing: [0, 2, false],
  allhidden: [1, 1, true],
};

async function grade(runner: ContainerRunner, policy: Policy): Promise<GradingResult> {
  const dir = mkdtempSync(path.join(tmpdir(), 'gofer-scoring-'));
  mkdirSync(path.join(dir, 'tests'));
  for (const [name, text] of Object.entries(TESTS)) writeFileSync(path.join(dir, 'tests', `${name}.py`), text);
  const assignment = await readAssignment(path.join(dir, 'tests'));
  const limits = gradingSchema.parse({ timeoutSeconds: 60 });
  return gradeIn(runner, { notebook: NOTEBOOK, policy, image: IMAGE, limits, ...assignment });
}

function byName(result: GradingResult): Record<string, TestResult> {
  return Object.fromEntries(result.tests.map((t) => [t.name, t]));
}

for (const mode of RUNNER_MODES) {
  describe(`scoring policies (real engine) (${mode.name})`, function () {
    this.timeout(180_000);
    let runner: ContainerRunner;
    let otter: GradingResult;
    let gofer: GradingResult;

    after(() => runner.stop());
    before(async () => {
      ({ runner } = await requireEngine({ pool: mode.pool }));
      // one after the other: in the pooled mode each takes a ready container
      otter = await grade(runner, 'otter');
      gofer = await grade(runner, 'gofer');
    });

    it('otter: partial credit per case, by the rules for points given as a number, a list, or absent', () => {
      expect(otter.status).to.equal('graded');
      const got = Object.fromEntries(otter.tests.map((t) => [t.name, [t.points, t.maxPoints, t.passed]]));
      expect(got).to.deep.equal(OTTER);
      const points = Object.values(OTTER).reduce((s, [p]) => s + p, 0);
      const max = Object.values(OTTER).reduce((s, [, m]) => s + m, 0);
      expect(otter.points).to.be.closeTo(points, 1e-6);
      expect(otter.maxPoints).to.be.closeTo(max, 1e-6);
      expect(otter.score).to.be.closeTo(points / max, 1e-6);
    });

    it('gofer: a file passes only when every case passes, and each file weighs the same', () => {
      expect(gofer.status).to.equal('graded');
      for (const t of gofer.tests) {
        expect(t.maxPoints, t.name).to.equal(1);
        expect(t.points, t.name).to.equal(t.passed ? 1 : 0);
        // under gofer a case without `hidden` is visible; `allhidden` marks its only case hidden
        expect(t.passed, t.name).to.equal(OTTER[t.name]![2]);
      }
      const passed = gofer.tests.filter((t) => t.passed).length;
      expect(gofer.score).to.be.closeTo(passed / Object.keys(TESTS).length, 1e-6);
    });

    it('explains failed visible cases with the expected and actual output', () => {
      const t = byName(otter);
      expect(t.undefined!.message).to.match(/missing_answer/).and.match(/NameError/);
      expect(t.listpoints!.message).to.match(/Expected:\s+5/).and.match(/Got:\s+4/);
    });

    it('withholds hidden cases: a test made only of hidden cases is hidden, and hidden failures show no code or output', () => {
      const t = byName(otter);
      expect(t.allhidden!.hidden).to.equal(true);
      expect(t.hiddenfail!.hidden).to.equal(false);
      expect(t.hiddenfail!.message ?? '').not.to.match(/double\(10\)|21|20/);
      for (const test of otter.tests) expect(JSON.stringify(test)).not.to.include('double(10)');
    });
  });
}
