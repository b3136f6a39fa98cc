import { expect } from 'chai';
import { gradingSchema } from '../../src/config/schema.js';
import type { ContainerRunner } from '../../src/grading/container-runner.js';
import { gradeNotebook } from '../../src/grading/grader.js';
import type { GradingResult } from '../../src/grading/result.js';
import { assignmentOf, IMAGE, requireEngine } from '../helpers/engine.js';
import { notebookBytes, okTest } from '../helpers/notebooks.js';

/**
 * `timing.cpuMs`: the container's CPU from its own cgroup (docs/harness-protocol.md), counting
 * the learner's kernel and a process it started and reaped, and out of the learner's reach.
 */
const BURN = `import os, subprocess, sys, time
def burn(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
burn(0.5)
subprocess.run([sys.executable, '-c', 'import time\\nend = time.process_time() + 0.5\\nwhile time.process_time() < end: pass'], check=True)`;

/** Every cgroup CPU file the container has, written to from the learner's uid: each must refuse. */
const TAMPER = `import os
cpu_files = [p for p in ('/sys/fs/cgroup/cpu.stat', '/sys/fs/cgroup/cpuacct/cpuacct.usage') if os.path.exists(p)]
refused = []
for p in cpu_files:
    try:
        with open(p, 'w') as f:
            f.write('0')
        refused.append(False)
    except OSError:
        refused.append(True)
tamper_refused = bool(cpu_files) and all(refused)`;

describe('the container CPU a result reports (real engine)', function () {
  this.timeout(180_000);
  let runner: ContainerRunner;
  let idle: GradingResult;
  let busy: GradingResult;

  before(async () => {
    ({ runner } = await requireEngine());
    const assignment = await assignmentOf({ q1: okTest({ name: 'q1', cases: [{ code: '>>> tamper_refused\nTrue' }] }) });
    const limits = gradingSchema.parse({ timeoutSeconds: 60 });
    const grade = (cells: string[]): Promise<GradingResult> => gradeNotebook(runner, { notebook: notebookBytes(cells), policy: 'gofer', image: IMAGE, limits, ...assignment });
    idle = await grade([TAMPER]);
    busy = await grade([BURN, TAMPER]);
  });

  it('is reported by the harness and scores nothing: both notebooks are graded in full', () => {
    for (const r of [idle, busy]) {
      expect(r.status, JSON.stringify(r)).to.equal('graded');
      expect(r.score).to.equal(1);
      expect(r.timing?.cpuMs).to.be.a('number').and.greaterThan(0);
    }
  });

  it('counts the learner kernel and the processes it started, already gone: 1 CPU-s burned shows', () => {
    const extra = busy.timing!.cpuMs! - idle.timing!.cpuMs!;
    expect(extra, `idle ${idle.timing?.cpuMs} ms, busy ${busy.timing?.cpuMs} ms`).to.be.at.least(900);
  });

  it('cannot be written from the learner uid (the tests passed only because every write was refused)', () => {
    expect(busy.tests[0]).to.include({ name: 'q1', passed: true });
    expect(idle.tests[0]).to.include({ name: 'q1', passed: true });
  });
});
