import { expect } from 'chai';
import { gradingSchema } from '../../src/config/schema.js';
import type { ContainerRunner } from '../../src/grading/container-runner.js';
import type { GradingResult } from '../../src/grading/result.js';
import { assignmentOf, gradeIn, IMAGE, requireEngine, RUNNER_MODES } from '../helpers/engine.js';
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
burn(0.8)
subprocess.run([sys.executable, '-c', 'import time\\nend = time.process_time() + 0.8\\nwhile time.process_time() < end: pass'], check=True)`;

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

/** The idle notebook's container CPU, by runner mode, for the comparison at the end. */
const idleCpuMs = new Map<string, number>();

for (const mode of RUNNER_MODES) {
  describe(`the container CPU a result reports (real engine, ${mode.name})`, function () {
    this.timeout(180_000);
    let runner: ContainerRunner;
    let idle: GradingResult;
    let busy: GradingResult;

    before(async () => {
      ({ runner } = await requireEngine({ pool: mode.pool }));
      const assignment = await assignmentOf({ q1: okTest({ name: 'q1', cases: [{ code: '>>> tamper_refused\nTrue' }] }) });
      const limits = gradingSchema.parse({ timeoutSeconds: 60 });
      const grade = (cells: string[]): Promise<GradingResult> => gradeIn(runner, { notebook: notebookBytes(cells), policy: 'gofer', image: IMAGE, limits, ...assignment });
      idle = await grade([TAMPER]);
      busy = await grade([BURN, TAMPER]);
      idleCpuMs.set(mode.name, idle.timing?.cpuMs ?? NaN);
    });
    after(() => runner?.stop());

    it('is reported by the harness and scores nothing: both notebooks are graded in full', () => {
      for (const r of [idle, busy]) {
        expect(r.status, JSON.stringify(r)).to.equal('graded');
        expect(r.score).to.equal(1);
        expect(r.timing?.cpuMs).to.be.a('number').and.greaterThan(0);
      }
    });

    it('counts the learner kernel and the processes it started, already gone: 1.6 CPU-s burned shows', () => {
      // 400 ms of slack: the containers' own start-up varies between two gradings on a busy machine
      const extra = busy.timing!.cpuMs! - idle.timing!.cpuMs!;
      expect(extra, `idle ${idle.timing?.cpuMs} ms, busy ${busy.timing?.cpuMs} ms`).to.be.at.least(1200);
    });

    it('cannot be written from the learner uid (the tests passed only because every write was refused)', () => {
      expect(busy.tests[0]).to.include({ name: 'q1', passed: true });
      expect(idle.tests[0]).to.include({ name: 'q1', passed: true });
    });
  });
}

describe('the container CPU of a pre-started container (real engine)', () => {
  it('counts from the container\'s start: its modules imported before the job show, more than a fresh container that imports none', () => {
    const [fresh, prestarted] = RUNNER_MODES.map((m) => idleCpuMs.get(m.name)!);
    expect(prestarted, `fresh ${fresh} ms, pre-started ${prestarted} ms`).to.be.greaterThan(fresh! + 200);
  });
});
