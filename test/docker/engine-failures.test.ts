import { expect } from 'chai';
import Docker from 'dockerode';
import { mkdtempSync, readFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { gradingSchema } from '../../src/config/schema.js';
import { AssignmentCatalog } from '../../src/grading/catalog.js';
import { CONTAINER_LABEL, ContainerRunner, EngineError, OWNER_LABEL } from '../../src/grading/container-runner.js';
import { EngineMonitor } from '../../src/grading/engine-monitor.js';
import { gradeNotebook, readAssignment } from '../../src/grading/grader.js';
import { HeartbeatStore } from '../../src/grading/heartbeats.js';
import { JobQueue } from '../../src/submissions/job-queue.js';
import { WorkerPool, type GradeFn } from '../../src/grading/worker.js';
import { systemClock } from '../../src/lib/clock.js';
import { silentLogger } from '../../src/lib/logger.js';
import { SubmissionStore } from '../../src/submissions/store.js';
import { freshDb } from '../helpers/databases.js';
import { EngineProxy } from '../helpers/engine-proxy.js';
import { gradingContainers, IMAGE, removeOwnContainers, requireEngine } from '../helpers/engine.js';
import { capturingLogger } from '../helpers/logs.js';
import { notebookBytes } from '../helpers/notebooks.js';
import { waitFor } from '../helpers/process.js';
import { EXAMPLE_TESTS, ROOT } from '../helpers/service.js';

/**
 * A dying engine costs nobody a grade: a wait that drops after its 200 header, an engine that
 * vanishes mid-grading, a worker whose engine is down, and a worker whose configuration lacks
 * the assignment. The proxy in front of the real engine misbehaves the way a killed dockerd does.
 */
const LIMITS = { ...gradingSchema.parse({}), timeoutSeconds: 10 };
const EXAMPLE = readFileSync(path.join(ROOT, 'config/example/lab01/lab01.ipynb'));

describe('a dying Docker engine (real engine behind a misbehaving socket)', function () {
  this.timeout(180_000);
  let docker: Docker;
  let proxy: EngineProxy;
  let assignment: Awaited<ReturnType<typeof readAssignment>>;

  before(async () => {
    ({ docker } = await requireEngine());
    assignment = await readAssignment(EXAMPLE_TESTS, { files: ['data.csv'] });
  });
  beforeEach(() => {
    proxy = new EngineProxy(path.join(mkdtempSync(path.join(tmpdir(), 'gofer-eng-')), 'docker.sock'));
  });
  afterEach(async () => {
    await proxy.kill();
    await removeOwnContainers(docker);
  });

  const runnerOn = (socketPath: string, opts: { callMs?: number } = {}): ContainerRunner =>
    new ContainerRunner(new Docker({ socketPath }), silentLogger(), { watchMs: 500, ...opts });

  it('grades a notebook whose wait connection drops after the 200 header, instead of hanging until the limit and calling it a timeout', async () => {
    await proxy.start();
    proxy.dropWaits = true;
    const started = Date.now();
    const result = await gradeNotebook(runnerOn(proxy.socketPath), { notebook: EXAMPLE, image: IMAGE, policy: 'otter', limits: LIMITS, ...assignment });
    expect(result.status, result.message).to.equal('graded');
    expect(result.score).to.equal(1);
    // the wall-clock limit here is 90 s: far under it
    expect(Date.now() - started).to.be.below(60_000);
  });

  it('fails with an engine error, never the learner\'s timeout, when the engine vanishes mid-grading', async () => {
    await proxy.start();
    const runner = runnerOn(proxy.socketPath, { callMs: 3000 });
    const jobId = `vanish-${process.pid}`;
    const grading = gradeNotebook(runner, { notebook: notebookBytes(['import time\ntime.sleep(120)']), image: IMAGE, policy: 'gofer', limits: LIMITS, ...assignment, jobId }).then(
      (r) => r,
      (e: Error) => e,
    );
    await waitFor('the grading container to run', async () => (await docker.listContainers({ filters: { label: [`org.gofer.job=${jobId}`] } })).length > 0, 60_000, 100);
    const killed = Date.now();
    await proxy.kill();
    const outcome = await grading;
    expect(outcome, JSON.stringify(outcome)).to.be.instanceOf(EngineError);
    expect(Date.now() - killed).to.be.below(30_000);
  });

  it('a worker on a dead engine claims nothing and uses no attempt; it resumes by itself, logs each change once, and sweeps its leftovers', async () => {
    const { db, drop } = await freshDb('sqlite');
    const { log, count } = capturingLogger();
    const store = new SubmissionStore(db);
    const queue = new JobQueue(db, { retryDelayMs: 1000, log });
    const runner = runnerOn(proxy.socketPath);
    const monitor = new EngineMonitor(runner, { images: [IMAGE], log, cacheMs: 200, engine: 'proxy' });
    const grade: GradeFn = (_s, notebook, signal) => gradeNotebook(runner, { notebook, image: IMAGE, policy: 'otter', limits: LIMITS, ...assignment, signal });
    const pool = new WorkerPool({ queue, grade, clock: systemClock, log, name: 'w-dead', size: 1, leaseMs: 30_000, pollMs: 100, engine: monitor, engineName: 'proxy' });
    try {
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const id = `dead-${i}-${process.pid}`;
        await store.create({ id, owner: `l${i}`, course: '8x', assignment: 'lab01', section: '1', notebook: EXAMPLE.toString(), sha256: String(i).repeat(64) }, { now: Date.now(), duplicateWindowMs: 0, perMinute: 100, maxAttempts: 3 });
        ids.push(id);
      }
      // a container a past job of this process left when its engine failed
      const left = await docker.createContainer({ Image: IMAGE, Cmd: ['true'], Labels: { [CONTAINER_LABEL]: '1', [OWNER_LABEL]: `${hostname()}/${process.pid}` } });
      pool.start();
      await waitFor('several probes of the dead engine', async () => monitor.probes >= 6, 30_000, 50);
      const jobs = await db('grading_jobs').select('status', 'attempts');
      expect(jobs).to.deep.equal(ids.map(() => ({ status: 'queued', attempts: 0 })));
      expect(monitor.state).to.equal('down');

      await proxy.start();
      await waitFor('every submission graded', async () => (await db('submissions').whereNot({ status: 'graded' }).count({ n: '*' }).first())!.n == 0, 120_000, 200);
      expect(await db('grading_jobs').select('status', 'attempts')).to.deep.equal(ids.map(() => ({ status: 'done', attempts: 1 })));
      expect((await db('results').select('worker', 'engine')).map((r) => r.engine)).to.deep.equal(['proxy', 'proxy', 'proxy']);
      expect(count('error', /engine cannot grade/)).to.equal(1);
      expect(count('warn', /answers again/)).to.equal(1);
      await waitFor('the leftover swept', async () => (await docker.listContainers({ all: true, filters: { id: [left.id] } })).length === 0, 20_000);
    } finally {
      await pool.stop(5000);
      await drop();
    }
  });

  it('a worker whose configuration lacks the assignment leaves its jobs to others, says so once, and burns no attempt', async () => {
    const { db, drop } = await freshDb('sqlite');
    const stale = capturingLogger();
    const store = new SubmissionStore(db);
    const { runner } = await requireEngine();
    const common = { clock: systemClock, size: 1, leaseMs: 30_000, pollMs: 100 };
    // the stale host's configuration has another assignment only
    const staleCatalog = await AssignmentCatalog.load({ grading: gradingSchema.parse({}), courses: [{ id: '8x', contexts: [], instructors: [], instructorGroups: [], assignments: [{ id: 'other', aliases: [], tests: EXAMPLE_TESTS, directory: path.dirname(EXAMPLE_TESTS), files: [], points: 1, late: 'accept', select: 'latest' }] }] });
    const staleGrade: GradeFn = async (s, notebook, signal) => {
      const g = staleCatalog.get(s.course, s.assignment);
      return gradeNotebook(runner, { notebook, image: g.image, policy: g.policy, limits: g.limits, tests: g.tests, supportFiles: g.supportFiles, signal });
    };
    const good: GradeFn = (_s, notebook, signal) => gradeNotebook(runner, { notebook, image: IMAGE, policy: 'otter', limits: LIMITS, ...assignment, signal });
    // the other host is alive (its heartbeat is fresh), so the stale one leaves the jobs to it
    const heartbeats = new HeartbeatStore(db);
    await heartbeats.beat({ id: 'good', engine: 'other', engineState: 'up', workers: 1, busy: 0, startedAt: Date.now(), seenAt: Date.now() });
    const stalePool = new WorkerPool({ ...common, heartbeats, queue: new JobQueue(db, { retryDelayMs: 1000, log: stale.log }), grade: staleGrade, log: stale.log, name: 'stale' });
    const goodPool = new WorkerPool({ ...common, heartbeats, queue: new JobQueue(db, { retryDelayMs: 1000 }), grade: good, log: silentLogger(), name: 'good' });
    try {
      for (let i = 0; i < 3; i++) {
        await store.create({ id: `stale-${i}-${process.pid}`, owner: `l${i}`, course: '8x', assignment: 'lab01', section: '1', notebook: EXAMPLE.toString(), sha256: String(i).repeat(64) }, { now: Date.now(), duplicateWindowMs: 0, perMinute: 100, maxAttempts: 2 });
      }
      stalePool.start();
      await waitFor('the stale worker to say it cannot grade', async () => stale.count('error', /cannot grade an assignment/) === 1, 20_000, 50);
      goodPool.start();
      await waitFor('every submission graded', async () => (await db('submissions').whereNot({ status: 'graded' }).count({ n: '*' }).first())!.n == 0, 120_000, 200);
      const jobs = await db('grading_jobs').select('attempts', 'status');
      expect(jobs).to.deep.equal([0, 1, 2].map(() => ({ attempts: 1, status: 'done' })));
      expect((await db('results').distinct('worker')).map((r) => String(r.worker).split('/')[0])).to.deep.equal(['good']);
      expect(stale.count('error', /cannot grade an assignment/)).to.equal(1);
      expect(await gradingContainers(docker, { pids: [process.pid], except: await runner.settled() })).to.equal(0);
    } finally {
      await stalePool.stop(5000);
      await goodPool.stop(5000);
      await drop();
    }
  });
});
