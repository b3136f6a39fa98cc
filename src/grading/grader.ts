import path from 'node:path';
import type { GradingLimits, Policy } from '../config/schema.js';
import { ConfigError, InfrastructureError } from '../lib/errors.js';
import { readSupportFiles, readTests, type JobFile } from './assignment-files.js';
import type { ContainerRunner } from './container-runner.js';
import { checkNotebook } from './notebook.js';
import { summarise, type GradingResult } from './result.js';

export interface GradeRequest {
  notebook: Buffer;
  /**
   * The notebook was examined at intake (src/submissions/examine.ts: the same checks, on the
   * examining threads), as every stored submission was: it is not parsed again here, on the
   * event loop, where a hostile one (24 MB nested 12 million deep) would hold it for seconds.
   */
  examined?: boolean;
  policy: Policy;
  image: string;
  limits: GradingLimits;
  tests: JobFile[];
  supportFiles: JobFile[];
  /** Where the tests are on the instructor's disk: a problem in a test file names it there, not inside the container. */
  testsDir?: string;
  jobId?: string;
  signal?: AbortSignal;
}

/**
 * The instructor's side of a job, read from disk: tests and the support files that `files`
 * names (paths or globs under the assignment directory; none by default).
 */
export async function readAssignment(testsDir: string, opts: { directory?: string; files?: string[] } = {}) {
  const tests = await readTests(testsDir);
  const supportFiles = await readSupportFiles(opts.directory ?? path.dirname(path.resolve(testsDir)), testsDir, opts.files ?? []);
  return { tests, supportFiles, testsDir: path.resolve(testsDir) };
}

/**
 * Grades one notebook. Learner problems (broken notebook, timeout, memory, a dead kernel)
 * come back as a result with a status; infrastructure and instructor problems throw.
 */
export async function gradeNotebook(runner: ContainerRunner, req: GradeRequest): Promise<GradingResult> {
  const started = Date.now();
  if (!req.examined) {
    const check = checkNotebook(req.notebook);
    if (!check.ok) return summarise('invalid_notebook', [], Date.now() - started, check.message);
  }

  const outcome = await runner.run({
    image: req.image,
    policy: req.policy,
    notebook: req.notebook,
    tests: req.tests,
    supportFiles: req.supportFiles,
    limits: req.limits,
    ...(req.jobId ? { jobId: req.jobId } : {}),
    ...(req.signal ? { signal: req.signal } : {}),
  });
  const elapsed = Date.now() - started;
  const limit = `${req.limits.timeoutSeconds} s`;
  switch (outcome.kind) {
    case 'wall_clock':
      return summarise('timeout', [], elapsed, `Grading took longer than the time limit (${limit}) and was stopped.`);
    case 'oom_no_result':
      return summarise('out_of_memory', [], elapsed, outOfMemory(req.limits.memoryMb));
    case 'harness': {
      const { output } = outcome;
      if (output.error) {
        if (output.error.kind === 'tests') throw new ConfigError(`The instructor tests cannot be used: ${onDisk(output.error.message, req.testsDir)}`);
        throw new InfrastructureError(`The grading harness failed: ${output.error.message}`);
      }
      // The kernel died and the engine saw the OOM killer: the learner's code used too much memory.
      if (output.status === 'kernel_died' && outcome.oomKilled) {
        return { ...summarise('out_of_memory', [], elapsed, outOfMemory(req.limits.memoryMb)), timing: output.timing };
      }
      const tests = output.status === 'graded' ? output.tests : [];
      return { ...summarise(output.status, tests, elapsed, output.message), ...(output.timing ? { timing: output.timing } : {}) };
    }
  }
}

function outOfMemory(memoryMb: number): string {
  return `The notebook used more than its ${memoryMb} MB of memory and was stopped.`;
}

/** "tests/q1.py: …" as the harness names a test file inside the container, named where the instructor keeps it. */
function onDisk(message: string, testsDir: string | undefined): string {
  return testsDir ? message.replace(/^tests\//, `${testsDir}${path.sep}`) : message;
}
