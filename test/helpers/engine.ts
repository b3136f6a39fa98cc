import Docker from 'dockerode';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { ContainerRunner, CONTAINER_LABEL, OWNER_LABEL } from '../../src/grading/container-runner.js';
import { gradeNotebook, readAssignment, type GradeRequest } from '../../src/grading/grader.js';
import type { GradingResult } from '../../src/grading/result.js';
import { silentLogger } from '../../src/lib/logger.js';

export const IMAGE = process.env.GOFER_TEST_IMAGE ?? 'gofer/grader:latest';

/**
 * The real Docker engine and the grader image, or a loud failure saying how to get them:
 * these tests claim to grade in containers, so they never pass without one.
 */
export async function requireEngine(opts: { pool?: boolean } = {}): Promise<{ docker: Docker; runner: ContainerRunner }> {
  const docker = new Docker();
  const runner = new ContainerRunner(docker, silentLogger(), opts.pool ? { pool: { floor: 1, ceiling: 1 } } : {});
  await runner.checkReady(IMAGE).catch((err: Error) => {
    throw new Error(`${err.message} (the docker tests need a running engine and the grader image: .ci/run starts both)`);
  });
  return { docker, runner };
}

/**
 * Grading containers on the engine: all of them, or only those made by the given processes
 * of this host (`pids`, e.g. this test process or the `gofer` children it spawned), so a suite
 * is not confused by another Gofer process sharing the engine.
 */
export async function gradingContainers(docker: Docker, opts: { pids?: Array<number | undefined>; except?: Set<string> } = {}): Promise<number> {
  const all = (await docker.listContainers({ all: true, filters: { label: [CONTAINER_LABEL] } })).filter((c) => !opts.except?.has(c.Id));
  if (!opts.pids) return all.length;
  const owners = new Set(opts.pids.map((pid) => `${hostname()}/${pid}`));
  return all.filter((c) => owners.has(c.Labels[OWNER_LABEL] ?? '')).length;
}

/**
 * Removes the containers this process made through an engine proxy that died before they could
 * be removed (a worker's sweep would, once its engine answered again; the proxy never does).
 */
export async function removeOwnContainers(docker: Docker): Promise<void> {
  const mine = await docker.listContainers({ all: true, filters: { label: [`${OWNER_LABEL}=${hostname()}/${process.pid}`] } });
  await Promise.all(mine.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
}

/**
 * The hold-out suites (scoring, hostile, forgery, evaluator) run twice: with a fresh container
 * per job, and with pre-started ones.
 */
export const RUNNER_MODES = [
  { name: 'fresh containers', pool: false },
  { name: 'pre-started containers', pool: true },
] as const;

/**
 * Grades in the runner's mode. With a pool, the pool for the job's image and limits is filled
 * first and the job must take one of its containers, so the pooled run cannot quietly grade in
 * fresh ones.
 */
export async function gradeIn(runner: ContainerRunner, req: GradeRequest): Promise<GradingResult> {
  const spec = { image: req.image, limits: req.limits };
  runner.keepWarm(spec);
  await runner.settled();
  const before = runner.poolStats();
  const result = await gradeNotebook(runner, req);
  const after = runner.poolStats();
  if (before.keys.length && after.hits !== before.hits + 1) {
    throw new Error(`the job did not take a pre-started container (hits ${before.hits} -> ${after.hits}, misses ${before.misses} -> ${after.misses})`);
  }
  return result;
}
/** An assignment made of the given test files (name -> OK-format source) in a fresh directory. */
export async function assignmentOf(tests: Record<string, string>): Promise<Awaited<ReturnType<typeof readAssignment>>> {
  const dir = mkdtempSync(path.join(tmpdir(), 'gofer-assignment-'));
  mkdirSync(path.join(dir, 'tests'));
  for (const [name, text] of Object.entries(tests)) writeFileSync(path.join(dir, 'tests', `${name}.py`), text);
  return readAssignment(path.join(dir, 'tests'));
}
