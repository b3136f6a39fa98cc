import { expect } from 'chai';
import { gradingSchema, type Policy } from '../../src/config/schema.js';
import type { ContainerRunner } from '../../src/grading/container-runner.js';
import type { GradingResult } from '../../src/grading/result.js';
import { assignmentOf, IMAGE, requireEngine, RUNNER_MODES, gradeIn } from '../helpers/engine.js';
import { notebookBytes, okTest } from '../helpers/notebooks.js';

/**
 * Notebooks that solve nothing and attack the test machinery in their own kernel. Tests run in
 * the trusted evaluator, so each scores exactly 0 under both policies, while an honest and a
 * half-right notebook keep their exact scores.
 */
const TESTS: Record<string, string> = {
  square: okTest({ name: 'square', okFormat: true, cases: [{ code: '>>> square(3)\n9', hidden: false }, { code: '>>> square(4) == 16\nTrue', hidden: true }] }),
  table: okTest({ name: 'table', okFormat: true, cases: [{ code: '>>> [square(i) for i in range(4)]\n[0, 1, 4, 9]', hidden: true }] }),
  frame: okTest({ name: 'frame', okFormat: true, cases: [{ code: '>>> import numpy as np\n>>> np.isclose(df["y"].sum(), 14.0)\nTrue', hidden: true }] }),
  shown: okTest({ name: 'shown', okFormat: true, cases: [{ code: '>>> print(label)\nsquares', hidden: true }] }),
};

/** Wrong answers every forger starts from: nothing here earns a point honestly. */
const WRONG = ['import pandas as pd\ndef square(x):\n    return 0\ndf = pd.DataFrame({"x": [1, 2, 3], "y": [0, 0, 0]})\nlabel = "cubes"'];

// What a forger that could see a test's source would print for it (an in-kernel runner shows
// the kernel every source); `_last` holds the last test source the kernel compiled, if any.
const SPY = [
  'import builtins',
  '_table = [("square(3)", "9\\n"), ("== 16", "True\\n"), ("range(4)", "[0, 1, 4, 9]\\n"), ("isclose", "True\\n"), ("label", "squares\\n")]',
  'def _want(src):',
  '    for key, text in _table:',
  '        if isinstance(src, str) and key in src:',
  '            return text',
  '    return ""',
  '_last = [""]',
  '_real_compile = builtins.compile',
  'def _recording_compile(src, filename, *a, **k):',
  '    if filename == "<test>":',
  '        _last[0] = src',
  '    return _real_compile(src, filename, *a, **k)',
].join('\n');

const FORGERS: Record<string, string> = {
  compile: `${SPY}\ndef _forge(src, filename, *a, **k):\n    if filename == "<test>":\n        return _real_compile("print(%r, end='')" % _want(src), filename, *a, **k)\n    return _real_compile(src, filename, *a, **k)\nbuiltins.compile = _forge`,
  exec: `${SPY}\nbuiltins.compile = _recording_compile\n_real_exec = builtins.exec\ndef _forge(code, *a, **k):\n    if getattr(code, "co_filename", "") == "<test>":\n        return builtins.print(_want(_last[0]), end="")\n    return _real_exec(code, *a, **k)\nbuiltins.exec = _forge`,
  'print and repr': `${SPY}\nbuiltins.compile = _recording_compile\n_p = builtins.print\nbuiltins.print = lambda *a, **k: _p(_want(_last[0]), end='')\nbuiltins.repr = lambda *a: _want(_last[0]).strip()`,
  'json.dumps': `import json\n_d = json.dumps\njson.dumps = lambda o, *a, **k: _d([{"out": "True\\n", "cut": False, "exc": None}] * len(o)) if isinstance(o, list) else _d(o, *a, **k)`,
  'sys.displayhook and sys.stdout': `${SPY}\nimport sys\nbuiltins.compile = _recording_compile\nsys.__displayhook__ = lambda v: sys.stdout.write(_want(_last[0]))\nsys.displayhook = sys.__displayhook__`,
  'io.StringIO and redirect_stdout': `${SPY}\nimport io, contextlib\nbuiltins.compile = _recording_compile\nclass _S(io.StringIO):\n    def getvalue(self):\n        return _want(_last[0])\nio.StringIO = _S\ncontextlib.redirect_stdout = lambda *a, **k: contextlib.nullcontext()`,
  doctest: `import doctest\ndoctest.OutputChecker.check_output = lambda *a, **k: True\ndoctest.DocTestRunner.run = lambda *a, **k: doctest.TestResults(0, 1)\ndoctest.DocTestParser.get_examples = lambda *a, **k: []`,
  'a thread that keeps re-patching': [
    SPY,
    'import io, json, sys, threading, time, doctest',
    'class _S(io.StringIO):\n    def getvalue(self):\n        return _want(_last[0])',
    'def _patch():',
    '    while True:',
    '        builtins.compile = _recording_compile',
    '        sys.__displayhook__ = lambda v: sys.stdout.write(_want(_last[0]))',
    '        io.StringIO = _S',
    '        json.dumps = lambda *a, **k: "[]"',
    '        doctest.OutputChecker.check_output = lambda *a, **k: True',
    '        time.sleep(0.001)',
    'threading.Thread(target=_patch, daemon=True).start()',
  ].join('\n'),
  'a thread that swaps the code of new functions': [
    'import gc, threading, time, types',
    'def _yes(*a, **k):\n    return True',
    '_seen = set(id(o) for o in gc.get_objects() if isinstance(o, types.FunctionType))',
    'def _swap():',
    '    while True:',
    '        for o in gc.get_objects():',
    '            if isinstance(o, types.FunctionType) and id(o) not in _seen and o is not _yes:',
    '                try:',
    '                    o.__code__ = _yes.__code__',
    '                except Exception:',
    '                    pass',
    '                _seen.add(id(o))',
    '        time.sleep(0.002)',
    'threading.Thread(target=_swap, daemon=True).start()',
  ].join('\n'),
  'ctypes writes into the kernel': [
    'import ctypes, sys',
    '# make the kernel\'s False read as 1 and rewrite the bytes of its interned "cubes" string',
    'ctypes.c_ssize_t.from_address(id(False) + 24).value = 1',
    'buf = (ctypes.c_char * 5).from_address(id(label) + sys.getsizeof("") - 1)',
    'buf.value = b"squar"',
  ].join('\n'),
};

for (const mode of RUNNER_MODES) {
  describe(`forging notebooks (real engine, trusted evaluator) (${mode.name})`, function () {
    this.timeout(300_000);
    let runner: ContainerRunner;
    let tests: Awaited<ReturnType<typeof assignmentOf>>;

    after(() => runner.stop());
    before(async () => {
      ({ runner } = await requireEngine({ pool: mode.pool }));
      tests = await assignmentOf(TESTS);
    });

    async function grade(cells: string[], policy: Policy): Promise<GradingResult> {
      const limits = gradingSchema.parse({ timeoutSeconds: 30, memoryMb: 512 });
      return gradeIn(runner, { notebook: notebookBytes(cells), policy, image: IMAGE, limits, ...tests });
    }

    for (const [name, attack] of Object.entries(FORGERS)) {
      it(`${name}: scores exactly 0 under both policies`, async () => {
        for (const policy of ['otter', 'gofer'] as const) {
          const r = await grade([...WRONG, attack], policy);
          expect(r.status, `${policy}: ${r.message}`).to.be.oneOf(['graded', 'kernel_died']);
          expect(r.score, `${policy}: ${JSON.stringify(r.tests)}`).to.equal(0);
          expect(r.points, policy).to.equal(0);
        }
      });
    }

    it('an honest notebook scores 1 and a half-right one its exact share, with the forgers in the same suite', async () => {
      const honest = ['import pandas as pd\ndef square(x):\n    return x * x\ndf = pd.DataFrame({"x": [1, 2, 3], "y": [1, 4, 9]})\nlabel = "squares"'];
      const half = ['import pandas as pd\ndef square(x):\n    return x * x\ndf = pd.DataFrame({"x": [1, 2, 3], "y": [0, 0, 0]})\nlabel = "cubes"'];
      for (const policy of ['otter', 'gofer'] as const) {
        const good = await grade(honest, policy);
        expect(good.status).to.equal('graded');
        expect(good.score, `${policy}: ${JSON.stringify(good.tests)}`).to.equal(1);
        const partial = await grade(half, policy);
        expect(partial.score, `${policy}: ${JSON.stringify(partial.tests)}`).to.equal(0.5);
      }
    });
  });
}
