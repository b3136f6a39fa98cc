import { expect } from 'chai';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gradingSchema } from '../../src/config/schema.js';
import type { ContainerRunner } from '../../src/grading/container-runner.js';
import { readAssignment } from '../../src/grading/grader.js';
import type { GradingResult, TestResult } from '../../src/grading/result.js';
import { IMAGE, requireEngine, RUNNER_MODES, gradeIn } from '../helpers/engine.js';
import { notebookBytes, okTest } from '../helpers/notebooks.js';

/**
 * What tests can do with the notebook's values across the evaluator's channel (real engine):
 * the idioms course tests use on crossed numpy and pandas data, learner objects used through
 * handles, printed text, exceptions, a per-case time limit, caps, setup and teardown, and the
 * evaluator's own process being out of the learner's reach.
 */
const NOTEBOOK = [
  'import numpy as np\nimport pandas as pd\nimport math',
  [
    'x = 3.14159',
    'arr = np.linspace(0, 1, 5)',
    'df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]}, index=["r1", "r2", "r3"])',
    's = pd.Series([1.5, 2.5], name="s")',
    'd = {"b": 2, "a": 1}',
    'lst = [1, (2, 3), {4}, frozenset([5]), b"6", 7 + 8j, None, True]',
    'scalar = np.float32(2.5)',
    'objects = np.array([1, "two", None], dtype=object)',
    'class Counter:',
    '    def __init__(self):',
    '        self.n = 0',
    '    def bump(self, by=1):',
    '        self.n += by',
    '        return self',
    '    def __repr__(self):',
    '        return "Counter(%d)" % self.n',
    'class Pointer:',
    '    # asks numpy to read 4 doubles at address 8 (of whichever process converts it)',
    '    __array_interface__ = {"shape": (4,), "typestr": "<f8", "data": (8, False), "version": 3}',
    'pointer = Pointer()',
    'class Oops(ValueError):',
    '    pass',
    'def fail():',
    '    raise Oops("nope")',
    'def greet(name):',
    '    print("hello,", name)',
    '    return len(name)',
    'def forever():',
    '    while True:',
    '        pass',
    'def squares(n):',
    '    for i in range(n):',
    '        yield i * i',
    'big = np.zeros(10_000_000)',
    'deep = []',
    'node = deep',
    'for _ in range(500):',
    '    node.append([])',
    '    node = node[0]',
  ].join('\n'),
  'with open("learner_module.py", "w") as f:\n    f.write("import os\\nos._exit(3)\\n")',
  [
    'import os',
    '# the evaluator exists before this cell runs, as another uid, and is out of reach',
    'evaluators = []',
    'for pid in os.listdir("/proc"):',
    '    if pid.isdigit():',
    '        try:',
    '            status = open("/proc/%s/status" % pid).read()',
    '        except OSError:',
    '            continue',
    '        uid = int(status.split("Uid:")[1].split()[0])',
    '        if uid not in (0, os.getuid()):',
    '            evaluators.append(int(pid))',
    'reach = []',
    'for pid in evaluators:',
    '    for path in ("/proc/%d/mem" % pid, "/proc/%d/environ" % pid):',
    '        try:',
    '            open(path, "rb").read(1)',
    '            reach.append(path)',
    '        except OSError:',
    '            pass',
    '    try:',
    '        os.kill(pid, 9)',
    '        reach.append("kill")',
    '    except OSError:',
    '        pass',
  ].join('\n'),
];

const CASES: Record<string, string> = {
  isclose: '>>> np.isclose(x, 3.14, atol=0.01)\nTrue',
  assert_allclose: '>>> np.testing.assert_allclose(arr, [0, 0.25, 0.5, 0.75, 1.0])',
  ndarray: '>>> isinstance(arr, np.ndarray), arr.dtype\n(True, dtype(\'float64\'))',
  shape: '>>> df.shape\n(3, 2)',
  equals: '>>> df.equals(pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]}, index=["r1", "r2", "r3"]))\nTrue',
  frame_repr: '>>> df\n    a  b\nr1  1  x\nr2  2  y\nr3  3  z',
  series: '>>> s.sum(), s.name\n(4.0, \'s\')',
  items: '>>> sorted(d.items())\n[(\'a\', 1), (\'b\', 2)]',
  plain: '>>> len(lst), lst\n(8, [1, (2, 3), {4}, frozenset({5}), b\'6\', (7+8j), None, True])',
  scalar: '>>> type(scalar).__name__, scalar\n(\'float32\', 2.5)',
  objects: '>>> objects.tolist()\n[1, \'two\', None]',
  handle: '>>> c = Counter()\n>>> c.bump().bump(2)\nCounter(3)\n>>> c.n\n3',
  printed: '>>> greet("Ada")\nhello, Ada\n3',
  exception: '>>> fail()\nTraceback (most recent call last):\n    ...\nOops: nope',
  caught: '>>> try:\n...     fail()\n... except Oops as e:\n...     print("caught", e)\ncaught nope',
  builtin_exception: '>>> d["zzz"]\nTraceback (most recent call last):\n    ...\nKeyError: \'zzz\'',
  generator: '>>> list(squares(4))\n[0, 1, 4, 9]',
  module: '>>> math.sqrt(16)\n4.0',
  forever: '>>> forever()',
  after_forever: '>>> x > 3\nTrue',
  too_big: '>>> big.sum()\n0.0',
  too_deep: '>>> len(deep)\n1',
  out_of_reach: '>>> len(evaluators), reach\n(1, [])',
  raw_memory: ">>> np.asarray(pointer).dtype\ndtype('O')",
  no_learner_import: ">>> import learner_module\nTraceback (most recent call last):\n    ...\nModuleNotFoundError: No module named 'learner_module'",
};

for (const mode of RUNNER_MODES) {
  describe(`the trusted evaluator (real engine) (${mode.name})`, function () {
    this.timeout(240_000);
    let runner: ContainerRunner;
    let result: GradingResult;
    const byName: Record<string, TestResult> = {};

    after(() => runner.stop());
    before(async () => {
      ({ runner } = await requireEngine({ pool: mode.pool }));
      const dir = mkdtempSync(path.join(tmpdir(), 'gofer-evaluator-'));
      mkdirSync(path.join(dir, 'tests'));
      for (const [name, code] of Object.entries(CASES)) writeFileSync(path.join(dir, 'tests', `${name}.py`), okTest({ name, okFormat: true, cases: [{ code, hidden: false }] }));
      writeFileSync(
        path.join(dir, 'tests', 'around.py'),
        okTest({ name: 'around', okFormat: true, setup: '>>> offset = 10', teardown: '>>> del offset', cases: [{ code: '>>> x + offset > 13\nTrue', hidden: false }, { code: ">>> 'offset' in dir()\nTrue", hidden: false }] }),
      );
      const tests = await readAssignment(path.join(dir, 'tests'));
      // 20 s: the per-case limit is 5 s, so `forever` ends alone and the rest still run
      result = await gradeIn(runner, { notebook: notebookBytes(NOTEBOOK), policy: 'otter', image: IMAGE, limits: gradingSchema.parse({ timeoutSeconds: 20, memoryMb: 1024 }), ...tests });
      for (const t of result.tests) byName[t.name] = t;
    });

    const passing = Object.keys(CASES).filter((n) => !['forever', 'too_big', 'too_deep'].includes(n));
    for (const name of [...passing, 'around']) {
      it(`${name}: works on the notebook's values`, () => {
        expect(result.status, result.message ?? '').to.equal('graded');
        expect(byName[name]?.passed, byName[name]?.message).to.equal(true);
      });
    }

    it('a learner function that never returns fails only its case, with a time-limit message', () => {
      expect(byName.forever?.passed).to.equal(false);
      expect(byName.forever?.message).to.match(/still running after 5 s/);
      expect(byName.after_forever?.passed).to.equal(true);
    });

    it('a value over the size or depth caps fails its case with a message that says so', () => {
      expect(byName.too_big?.message).to.match(/cannot be read by the tests: it is larger than 64 MB/);
      expect(byName.too_deep?.message).to.match(/cannot be read by the tests: it is nested more than 64 levels/);
    });
  });
}
