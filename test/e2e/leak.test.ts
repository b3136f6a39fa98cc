import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createDb } from '../../src/db/knex.js';
import { systemClock } from '../../src/lib/clock.js';
import { ApiTokenStore } from '../../src/submissions/identity.js';
import { requireEngine } from '../helpers/engine.js';
import { notebook, okTest } from '../helpers/notebooks.js';
import { waitFor } from '../helpers/process.js';
import { ROOT, startService } from '../helpers/service.js';

/**
 * The attack that leaked hidden tests (a notebook replacing its kernel's `session.sign`, plus
 * one that prints or raises what it can find), end to end through the service and the CLI:
 * no learner-facing answer, field or command output holds a hidden test's source or expected
 * output, and the submission is graded once, as the learner's outcome.
 */
const HIDDEN_SOURCE = 'hidden_probe_7731(answer)';
const HIDDEN_WANT = 'HIDDEN_WANT_5517';

function assignmentDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'gofer-leak-'));
  mkdirSync(path.join(dir, 'tests'));
  writeFileSync(
    path.join(dir, 'tests', 'q1.py'),
    okTest({ name: 'q1', okFormat: true, cases: [{ code: '>>> answer\n42', hidden: false }, { code: `>>> ${HIDDEN_SOURCE}\n'${HIDDEN_WANT}'`, hidden: true }] }),
  );
  return dir;
}

const ATTACKS: Record<string, string[]> = {
  'replaces session.sign': ['answer = 42', 'kernel = get_ipython().kernel\nkernel.session.sign = lambda parts: b"".join(parts)'],
  'raises what it is asked for': [
    'answer = 42',
    'class Echo:\n    def __getattr__(self, name):\n        raise RuntimeError("asked for %r" % name)\n    def __call__(self, *a, **k):\n        raise RuntimeError("called with %r %r" % (a, k))\nhidden_probe_7731 = Echo()',
  ],
};

function leaks(text: string): boolean {
  return text.includes(HIDDEN_SOURCE) || text.includes(HIDDEN_WANT) || text.includes('hidden_probe');
}

describe('hidden tests never leak, end to end (real engine)', function () {
  this.timeout(180_000);
  let svc: Awaited<ReturnType<typeof startService>>;
  let token: string;
  let dir: string;

  before(async () => {
    await requireEngine();
    dir = assignmentDir();
    svc = await startService({
      workers: 1,
      overrides: { courses: [{ id: '8x', instructors: ['prof'], assignments: [{ id: 'lab01', tests: path.join(dir, 'tests'), policy: 'otter', timeoutSeconds: 20 }] }] },
    });
    const db = createDb(svc.config);
    token = await new ApiTokenStore(db, systemClock).create('ada');
    await db.destroy();
  });
  after(async () => svc?.stop());

  for (const [name, cells] of Object.entries(ATTACKS)) {
    it(`a notebook that ${name}: nothing of the hidden case in any learner-facing answer, graded once`, async () => {
      const nb = notebook(cells, { otter_service: { course: '8x', assignment: 'lab01' } });
      const submit = await fetch(`${svc.url}/api/v1/submissions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `token ${token}` },
        body: JSON.stringify({ nb }),
      });
      const answer = await submit.text();
      expect(submit.status, answer).to.be.oneOf([200, 202]);
      const { id } = JSON.parse(answer) as { id: string };
      let view = '';
      await waitFor('the grade', async () => {
        view = await (await fetch(`${svc.url}/api/v1/submissions/${id}`, { headers: { authorization: `token ${token}` } })).text();
        return ['graded', 'kernel_died', 'failed', 'timeout'].includes((JSON.parse(view) as { status: string }).status);
      }, 120_000, 250);
      const db = createDb(svc.config);
      try {
        const row = await db('submissions').where({ id }).first();
        const results = await db('results').where({ submission_id: id });
        const jobs = await db('grading_jobs').where({ submission_id: id });
        expect(leaks(answer), answer).to.equal(false);
        expect(leaks(view), view).to.equal(false);
        expect(leaks(JSON.stringify(row)), JSON.stringify(row)).to.equal(false);
        expect(leaks(JSON.stringify(results)), JSON.stringify(results)).to.equal(false);
        expect(jobs.map((j: { attempts: number }) => j.attempts), 'graded once, not retried').to.deep.equal([1]);
        expect(row.status).to.be.oneOf(['graded', 'kernel_died']);
      } finally {
        await db.destroy();
      }
      const nbFile = path.join(dir, `${id}.ipynb`);
      writeFileSync(nbFile, JSON.stringify(nb));
      for (const args of [['--json'], []]) {
        const out = await promisify(execFile)(process.execPath, [path.join(ROOT, 'bin/gofer.js'), 'grade', nbFile, '--tests', path.join(dir, 'tests'), '--policy', 'otter', ...args]).catch(
          (e: { stdout: string; stderr: string }) => e,
        );
        expect(leaks(out.stdout), out.stdout).to.equal(false);
      }
    });
  }
});
