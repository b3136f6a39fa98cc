import Docker from 'dockerode';
import { ContainerRunner, CONTAINER_LABEL, OWNER, OWNER_LABEL } from '../../src/grading/container-runner.js';
import { silentLogger } from '../../src/lib/logger.js';

export const IMAGE = process.env.GOFER_TEST_IMAGE ?? 'gofer/grader:latest';

/**
 * The real Docker engine and the grader image, or a loud failure saying how to get them:
 * these tests claim to grade in containers, so they never pass without one.
 */
export async function requireEngine(): Promise<{ docker: Docker; runner: ContainerRunner }> {
  const docker = new Docker();
  const runner = new ContainerRunner(docker, silentLogger());
  await runner.checkReady(IMAGE).catch((err: Error) => {
    throw new Error(`${err.message} (the docker tests need a running engine and the grader image: .ci/run starts both)`);
  });
  return { docker, runner };
}

/**
 * Grading containers on the engine: all of them, or only those this test process made (`mine`),
 * so that a suite is not confused by another Gofer process sharing the engine.
 */
export async function gradingContainers(docker: Docker, opts: { mine?: boolean } = {}): Promise<number> {
  const label = opts.mine ? [CONTAINER_LABEL, `${OWNER_LABEL}=${OWNER}`] : [CONTAINER_LABEL];
  return (await docker.listContainers({ all: true, filters: { label } })).length;
}
