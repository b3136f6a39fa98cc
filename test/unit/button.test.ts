import { expect } from 'chai';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';
import ts from 'typescript';
import { HIDDEN_TESTS } from '../../src/web/learner-view.js';
import { ROOT } from '../helpers/service.js';

/**
 * The Submit buttons' logic without a browser: the one view both buttons use (a UMD script in the
 * Python package), the JupyterLab plugin's flow (its TypeScript source, transpiled here), and the
 * prebuilt JupyterLab extension carried in the package.
 */
const PACKAGE = path.join(ROOT, 'extensions/jupyter_gofer/jupyter_gofer');
const LAB_SRC = path.join(ROOT, 'extensions/jupyterlab-gofer/src');

/** Runs a CommonJS/UMD script in a fresh context and returns its exports. */
function load<T>(source: string): T {
  const module = { exports: {} as T };
  vm.runInNewContext(source, { module, exports: module.exports, setTimeout, Promise, JSON });
  return module.exports;
}

interface Described {
  done: boolean;
  state: string;
  headline: string;
  sentences: string[];
  tests: Array<{ name: string; passed: boolean; text: string; detail?: string }>;
}
interface View {
  describe(s: unknown, now: number): Described;
  POLL_MS: number;
}

const view = load<View>(readFileSync(path.join(PACKAGE, 'nbextension/view.js'), 'utf8'));
const received = '2026-01-01T10:00:00.000Z';
const at = (s: number) => Date.parse(received) + s * 1000;

describe('the Submit buttons: what the dialog says', () => {
  it('while queued or grading: "received", with the seconds elapsed against the time limit, and polling goes on', () => {
    const d = view.describe({ status: 'grading', receivedAt: received, timeLimitSeconds: 60, tests: [] }, at(12.4));
    expect(d).to.include({ done: false, state: 'received', headline: 'Received: grading' });
    expect(d.sentences[1]).to.equal('Grading: 12 s of the 60 s time limit.');
    expect(view.describe({ status: 'queued', receivedAt: received, timeLimitSeconds: 60 }, at(3)).sentences[1]).to.equal('Waiting: 3 s of the 60 s time limit.');
  });

  it("graded: the score on the assignment's scale, visible tests with their weight and diff, hidden ones only as a sentence, and which submission counts", () => {
    const d = view.describe(
      {
        status: 'graded',
        receivedAt: received,
        grade: { given: 1.5, maximum: 3, text: '1.5 / 3 points (50%)' },
        standing: { sentence: 'Your latest graded submission counts. edX is sent this one: 1.5 / 3 points (50%).' },
        tests: [
          { name: 'q1', points: 1, maxPoints: 1, passed: true, hidden: false },
          { name: 'q2', points: 0, maxPoints: 1, passed: false, hidden: false, message: 'Expected:\n    4\nGot:\n    5' },
        ],
        hiddenTests: true,
      },
      at(20),
    );
    expect(d).to.include({ done: true, state: 'graded', headline: 'Score: 1.5 / 3 points (50%)' });
    expect(d.sentences).to.include('Your latest graded submission counts. edX is sent this one: 1.5 / 3 points (50%).');
    expect(d.tests.map((t) => t.text)).to.deep.equal(['q1: passed (1 / 1)', 'q2: failed (0 / 1)']);
    expect(d.tests[1]!.detail).to.equal('Expected:\n    4\nGot:\n    5');
    expect(d.sentences.at(-1)).to.equal('The score also includes hidden tests; their results are not shown.');
  });

  it('never shows a hidden test, even from an answer that carries one (an instructor submitting, an older Gofer)', () => {
    const d = view.describe(
      {
        status: 'graded',
        receivedAt: received,
        grade: { given: 1, maximum: 1, text: '1 / 1 point (100%)' },
        tests: [
          { name: 'q1', points: 1, maxPoints: 1, passed: true, hidden: false },
          { name: 'q3', points: 0, maxPoints: 1, hidden: true, passed: false, message: 'hidden output' },
        ],
      },
      at(20),
    );
    expect(d.tests.map((t) => t.text)).to.deep.equal(['q1: passed (1 / 1)']);
    expect(JSON.stringify(d)).not.to.include('q3').and.not.include('hidden output');
    expect(d.sentences).to.include(HIDDEN_TESTS);
  });

  it('not graded (time limit, memory): says why in a sentence and stops polling', () => {
    const d = view.describe({ status: 'timeout', receivedAt: received, message: 'Grading took longer than the time limit (60 s) and was stopped.', standing: { sentence: 'Your latest graded submission counts. edX has not been sent a grade for this assignment.' } }, at(70));
    expect(d).to.include({ done: true, state: 'not graded', headline: 'Not graded' });
    expect(d.sentences.slice(1)).to.deep.equal([
      'Not graded: your notebook ran longer than the time limit.',
      'Grading took longer than the time limit (60 s) and was stopped.',
      'Your latest graded submission counts. edX has not been sent a grade for this assignment.',
    ]);
  });
});

interface Flow {
  submitFlow(deps: Record<string, unknown>): Promise<{ described?: Described; error?: string }>;
  SAVE_FAILED: string;
}
const flow = load<Flow>(ts.transpileModule(readFileSync(path.join(LAB_SRC, 'flow.ts'), 'utf8'), { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2020 } }).outputText);

describe('the JupyterLab button: its flow (save, submit, poll)', () => {
  const run = (answers: Array<{ status: number; body?: Record<string, unknown> }>, opts: { saveFails?: boolean } = {}) => {
    const requests: Array<[string, string, string | undefined]> = [];
    const shown: Array<{ described?: Described; error?: string }> = [];
    let saved = 0;
    const result = flow.submitFlow({
      save: async () => {
        saved++;
        if (opts.saveFails) throw new Error('disk full');
      },
      path: 'labs/lab01.ipynb',
      request: async (p: string, init: { method: string; body?: string }) => {
        requests.push([init.method, p, init.body]);
        const a = answers.shift();
        if (!a) throw new Error(`unexpected request ${p}`);
        return { status: a.status, body: a.body };
      },
      show: (u: { described?: Described; error?: string }) => shown.push(u),
      view,
      now: () => at(5),
      sleep: async () => undefined,
      open: () => true,
    });
    return result.then((r) => ({ r, requests, shown, saved }));
  };

  it('saves first, submits the path, polls until graded, showing every step', async () => {
    const id = '6f1c1a52-1111-4c1e-9f00-000000000001';
    const { r, requests, shown, saved } = await run([
      { status: 200, body: { id, duplicate: false } },
      { status: 200, body: { status: 'queued', receivedAt: received, timeLimitSeconds: 60 } },
      { status: 200, body: { status: 'graded', receivedAt: received, grade: { text: '3 / 3 points (100%)' }, tests: [] } },
    ]);
    expect(saved).to.equal(1);
    expect(requests).to.deep.equal([
      ['POST', 'gofer/submit', JSON.stringify({ path: 'labs/lab01.ipynb' })],
      ['GET', `gofer/submissions/${id}`, undefined],
      ['GET', `gofer/submissions/${id}`, undefined],
    ]);
    expect(shown.map((s) => s.described?.state)).to.deep.equal(['received', 'graded']);
    expect(r.described?.headline).to.equal('Score: 3 / 3 points (100%)');
  });

  it('a notebook that cannot be saved is not submitted', async () => {
    const { r, requests } = await run([], { saveFails: true });
    expect(requests).to.deep.equal([]);
    expect(r.error).to.equal(flow.SAVE_FAILED);
  });

  it("shows the server extension's sentence for a refusal (rate limit, too large, not signed in), or says the server is unreachable", async () => {
    const limited = await run([{ status: 429, body: { error: 'You have submitted 4 times in the last minute; wait 30 s and submit again.', retryAfter: 30 } }]);
    expect(limited.r.error).to.equal('You have submitted 4 times in the last minute; wait 30 s and submit again.');
    expect(limited.shown).to.deep.equal([{ error: limited.r.error }]);
    const gone = await run([{ status: 0 }]);
    expect(gone.r.error).to.match(/could not reach your Jupyter server \(no answer\)\. Save your work, reload the page and submit again\./);
  });
});

describe('the prebuilt JupyterLab extension carried in the Python package', () => {
  const out = path.join(PACKAGE, 'labextension');

  it('is there: package.json names the built remote entry, which exists, and the bundle holds the plugin and the shared view', () => {
    expect(existsSync(path.join(out, 'package.json')), `${out}/package.json: build it with npm ci && npm run build in extensions/jupyterlab-gofer`).to.equal(true);
    const pkg = JSON.parse(readFileSync(path.join(out, 'package.json'), 'utf8')) as { name: string; jupyterlab: { _build?: { load: string; extension: string } } };
    expect(pkg.name).to.equal('jupyterlab-gofer');
    expect(pkg.jupyterlab._build).to.include({ extension: './extension' });
    const entry = path.join(out, pkg.jupyterlab._build!.load);
    expect(existsSync(entry), entry).to.equal(true);
    const bundle = readdirSync(path.join(out, 'static'))
      .filter((f) => f.endsWith('.js'))
      .map((f) => readFileSync(path.join(out, 'static', f), 'utf8'))
      .join('\n');
    expect(bundle).to.include('jupyterlab-gofer:submit');
    expect(bundle).to.include('The score also includes hidden tests; their results are not shown.');
    expect(bundle).to.not.include('a hidden test failed');
    // JupyterLab's own packages come from the host application, never bundled
    expect(readFileSync(entry, 'utf8')).to.match(/@jupyterlab\/apputils/);
    expect(bundle).to.not.include('class Dialog extends');
  });
});

describe("the server extension's sentences for Gofer's refusals (Python, the hub's single-user interpreter)", () => {
  it('say what to do: log in again (401), clear outputs (413), wait (429), try again later (5xx); Gofer\'s own sentence is kept', async () => {
    const { execFileSync } = await import('node:child_process');
    const script = `
import json
from jupyter_gofer.handlers import refusal, Settings
print(json.dumps({
  "401": refusal(401, "JupyterHub does not recognise your token"),
  "403": refusal(403, "The deadline for lab01 (2020-01-01T00:00:00.000Z) has passed; late submissions are not accepted."),
  "413": refusal(413, "The notebook is larger than 5 MB."),
  "429": refusal(429, "Too many submissions.", "30"),
  "503": refusal(503, "engine down"),
  "unset": Settings({}).problem(),
  "notoken": Settings({"GOFER_URL": "http://gofer:8080"}).problem(),
  "ready": Settings({"GOFER_URL": "http://gofer:8080/", "JUPYTERHUB_API_TOKEN": "t"}).problem(),
}))
`;
    const python = process.env.GOFER_TEST_PYTHON ?? '/usr/bin/python3';
    const out = JSON.parse(execFileSync(python, ['-c', script], { env: { ...process.env, PYTHONPATH: path.join(ROOT, 'extensions/jupyter_gofer') }, encoding: 'utf8' })) as Record<string, string | null>;
    expect(out['401']).to.equal('Gofer could not confirm who you are with JupyterHub. Log out of JupyterHub, log in again, and submit again.');
    expect(out['403']).to.equal('The deadline for lab01 (2020-01-01T00:00:00.000Z) has passed; late submissions are not accepted. Ask your course staff if you think this is wrong.');
    expect(out['413']).to.equal('The notebook is larger than 5 MB. Clear large outputs (Cell, All Output, Clear), save, and submit again.');
    expect(out['429']).to.equal('Too many submissions. Wait 30 s and submit again.');
    expect(out['503']).to.match(/^Gofer could not take your notebook right now \(503\)\. Try again in a minute/);
    expect(out.unset).to.match(/no GOFER_URL\. Tell your course staff\./);
    expect(out.notoken).to.match(/only in a server started by JupyterHub/);
    expect(out.ready).to.equal(null);
  });
});
