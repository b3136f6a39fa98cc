import { expect } from 'chai';
import type Docker from 'dockerode';
import { hostname } from 'node:os';
import { gradingSchema } from '../../src/config/schema.js';
import { ContainerRunner, CONTAINER_LABEL, OWNER_LABEL, POOL_LABEL } from '../../src/grading/container-runner.js';
import { gradeNotebook } from '../../src/grading/grader.js';
import { silentLogger } from '../../src/lib/logger.js';
import { assignmentOf, IMAGE, requireEngine } from '../helpers/engine.js';
import { notebookBytes, okTest } from '../helpers/notebooks.js';
import { waitFor } from '../helpers/process.js';

/**
 * Pre-started containers on a real engine: a job takes a ready one, which is removed after
 * that one job; the pool refills; a ready container holds nothing of any job; one that dies or
 * ages out is replaced, and a job never waits on it; stop() leaves nothing.
 */
describe('pre-started containers (real engine)', function () {
  this.timeout(180_000);
  let docker: Docker;
  let runner: ContainerRunner;
  let tests: Awaited<ReturnType<typeof assignmentOf>>;
  const limits = gradingSchema.parse({ timeoutSeconds: 30, memoryMb: 512 });
  const spec = { image: IMAGE, limits };

  const mine = async (): Promise<Docker.ContainerInfo[]> => docker.listContainers({ all: true, filters: { label: [CONTAINER_LABEL, `${OWNER_LABEL}=${hostname()}/${process.pid}`] } });
  const grade = (answer: string) => gradeNotebook(runner, { notebook: notebookBytes([`answer = ${answer}`]), policy: 'gofer', image: IMAGE, limits, ...tests });

  before(async () => {
    ({ docker } = await requireEngine());
    tests = await assignmentOf({ q1: okTest({ name: 'q1', cases: [{ code: '>>> answer\n42' }] }) });
  });

  afterEach(async () => {
    await runner?.stop();
    expect(await mine(), 'containers left after stop()').to.deep.equal([]);
  });

  it('a job takes a ready container, which serves that one job and is removed; the pool refills with a new one', async () => {
    runner = new ContainerRunner(docker, silentLogger(), { pool: { floor: 1, ceiling: 1 } });
    runner.keepWarm(spec);
    const [first] = await runner.settled();
    expect(first).to.be.a('string');
    const info = (await mine()).find((c) => c.Id === first)!;
    expect(info.Labels).to.include({ [POOL_LABEL]: '1', 'org.gofer.job': 'pool' });
    expect(info.State).to.equal('running');

    const r = await grade('42');
    expect(r.status).to.equal('graded');
    expect(r.score).to.equal(1);
    expect(runner.poolStats()).to.include({ hits: 1, misses: 0 });
    const [second] = await runner.settled();
    expect(second, 'a new container, not the one that graded').to.be.a('string').and.not.equal(first);
    expect(
      (await mine()).map((c) => c.Id),
      'the used container is gone',
    ).to.deep.equal([second]);

    // the next learner's job gets the new container, and its own result
    const wrong = await grade('41');
    expect(wrong.score).to.equal(0);
    expect(runner.poolStats()).to.include({ hits: 2, misses: 0 });
  });

  it('a ready container holds nothing of any job: no files in the job or work directories', async () => {
    runner = new ContainerRunner(docker, silentLogger(), { pool: { floor: 1, ceiling: 1 } });
    runner.keepWarm(spec);
    const [id] = await runner.settled();
    const exec = await docker.getContainer(id!).exec({ Cmd: ['sh', '-c', 'find /gofer /tmp/work; echo END'], AttachStdout: true, AttachStderr: true, User: '0' });
    const stream = await exec.start({ hijack: true, stdin: false });
    const out = await new Promise<string>((resolve) => {
      let text = '';
      stream.on('data', (d: Buffer) => (text += d.toString('latin1')));
      stream.on('end', () => resolve(text));
    });
    // the exec stream's frame headers are binary: keep the paths
    const paths = out
      .split('\n')
      .map((l) => l.slice(Math.max(0, l.indexOf('/'))))
      .filter((l) => l.startsWith('/'))
      .sort();
    expect(out).to.include('END');
    // the job directory holds only the kernel's connection file; the learner's working directory is empty
    expect(paths).to.deep.equal(['/gofer', '/gofer/kernel', '/gofer/kernel/connection.json', '/tmp/work']);
  });

  it('a ready container that dies is never handed out: the job starts a fresh one, and the pool replaces it', async () => {
    runner = new ContainerRunner(docker, silentLogger(), { pool: { floor: 1, ceiling: 1 } });
    runner.keepWarm(spec);
    const [dead] = await runner.settled();
    await docker.getContainer(dead!).kill();
    await waitFor('the attach stream to report the death', async () => (await docker.getContainer(dead!).inspect()).State.Running === false, 10_000, 50);
    await new Promise((r) => setTimeout(r, 200));
    const r = await grade('42');
    expect(r.score).to.equal(1);
    expect(runner.poolStats()).to.include({ hits: 0, misses: 1 });
    const [replacement] = await runner.settled();
    expect(replacement).to.be.a('string').and.not.equal(dead);
    expect((await mine()).map((c) => c.Id)).to.deep.equal([replacement]);
  });

  it('a ready container that waited past maxIdle is replaced', async () => {
    runner = new ContainerRunner(docker, silentLogger(), { pool: { floor: 1, ceiling: 1, maxIdleMs: 1500 } });
    runner.keepWarm(spec);
    const [old] = await runner.settled();
    const fresh = await waitFor(
      'the aged container to be replaced',
      async () => {
        const [id] = await runner.settled();
        return id !== old && id;
      },
      60_000,
      200,
    );
    expect(fresh).to.be.a('string');
    await runner.settled();
    expect((await mine()).map((c) => c.Id)).to.not.include(old);
  });

  it("the runner's own sweep of leftovers leaves its ready containers", async () => {
    runner = new ContainerRunner(docker, silentLogger(), { pool: { floor: 1, ceiling: 1 } });
    runner.keepWarm(spec);
    const [id] = await runner.settled();
    expect(await runner.removeLeftovers()).to.equal(0);
    expect((await mine()).map((c) => c.Id)).to.deep.equal([id]);
  });

  it('an image that cannot start pre-started containers: jobs start fresh ones and say why they fail', async () => {
    runner = new ContainerRunner(docker, silentLogger(), { pool: { floor: 1, ceiling: 1 } });
    const missing = { image: 'gofer/no-such-image:never', limits };
    runner.keepWarm(missing);
    await new Promise((r) => setTimeout(r, 500));
    const started = Date.now();
    const err = await gradeNotebook(runner, { notebook: notebookBytes(['answer = 42']), policy: 'gofer', image: missing.image, limits, ...tests }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).to.match(/gofer\/no-such-image:never is missing/);
    expect(Date.now() - started, 'the job did not wait on the pool').to.be.below(20_000);
    expect(runner.poolStats().misses).to.equal(1);
  });
});
