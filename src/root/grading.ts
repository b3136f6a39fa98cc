import { hostname } from 'node:os';
import { availableParallelism } from 'node:os';
import { AssignmentCatalog } from '../grading/catalog.js';
import { ContainerRunner, ENGINE_CALL_MS } from '../grading/container-runner.js';
import { createDocker, engineName } from '../grading/docker.js';
import { EngineMonitor } from '../grading/engine-monitor.js';
import { gradeNotebook } from '../grading/grader.js';
import type { HealthDeps } from '../grading/health.js';
import { HeartbeatStore } from '../grading/heartbeats.js';
import { WorkerPool } from '../grading/worker.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import { JobQueue } from '../submissions/job-queue.js';
import type { PassbackOutbox } from '../passback/outbox.js';
import type { PolicyLookup } from '../passback/policy.js';
import type { PoolOptions } from '../grading/warm-pool.js';
import type { Config } from '../config/schema.js';
import type { RootDeps } from './deps.js';

export interface Grading {
  pool: WorkerPool;
  /** What /health reports. */
  health: HealthDeps;
  /** This process's workers and the engine they grade on. */
  workers: number;
  engine: string;
  stop(): Promise<void>;
}

/** The process's name in heartbeats and leases. */
export function processName(): string {
  return `${hostname()}/${process.pid}`;
}

/**
 * The grading side: the assignment catalog and its images, the queue and the worker pool
 * (started), with the engine checked first when this process grades at all.
 */
export async function createGrading(
  deps: RootDeps & {
    workers?: number;
    /** With LTI: the queue records a graded result's passback row in the result's own transaction. */
    passback?: { outbox: PassbackOutbox; policy: PolicyLookup };
  },
): Promise<Grading> {
  const { config, db, clock, log, metrics } = deps;
  const docker = createDocker(config);
  const catalog = await AssignmentCatalog.load(config);
  const workers = deps.workers ?? config.queue.workers ?? availableParallelism();
  const runner = new ContainerRunner(docker, log, { pool: poolOptions(config, workers) });
  const name = processName();
  let engine = engineName(config, deps.env);
  let engineCpus = 0;
  if (workers > 0) {
    for (const image of catalog.images()) await runner.checkReady(image);
    await runner.removeLeftovers();
    for (const spec of catalog.specs()) runner.keepWarm(spec);
    // the engine's own id tells engines apart across hosts (the same socket path names a different engine on each)
    const info = (await Promise.race([docker.info(), new Promise((_, reject) => setTimeout(() => reject(new Error('no answer')), ENGINE_CALL_MS).unref())])) as { ID?: string; NCPU?: number };
    engine = `${engine} ${String(info.ID ?? '').slice(0, 14)}`.trim();
    engineCpus = Number(info.NCPU ?? 0);
  }
  const monitor = workers > 0 ? new EngineMonitor(runner, { images: catalog.images(), log, cacheMs: config.queue.engineProbeMs, engine }) : undefined;
  const heartbeats = new HeartbeatStore(db);
  const queue = new JobQueue(db, {
    retryDelayMs: config.queue.retryDelaySeconds * 1000,
    maxRunningPerLearner: config.queue.maxRunningPerLearner,
    log,
    ...(deps.passback ? { passback: deps.passback } : {}),
  });
  const pool = new WorkerPool({
    queue,
    clock,
    log,
    name,
    size: workers,
    leaseMs: config.queue.leaseSeconds * 1000,
    pollMs: config.queue.pollMs,
    ...(monitor ? { engine: monitor } : {}),
    engineName: engine,
    heartbeats,
    heartbeatMs: config.queue.heartbeatSeconds * 1000,
    metrics,
    grade: (submission, notebook, signal) => {
      const g = catalog.get(submission.course, submission.assignment);
      return gradeNotebook(runner, {
        notebook,
        examined: true,
        image: g.image,
        policy: g.policy,
        limits: g.limits,
        tests: g.tests,
        supportFiles: g.supportFiles,
        testsDir: g.assignment.tests,
        jobId: submission.id,
        signal,
      });
    },
  });
  metrics.collectFrom({ backlog: () => queue.backlog(clock.now()), poolStats: () => runner.poolStats() });
  pool.start();
  const stop = async (): Promise<void> => {
    await pool.stop(config.queue.shutdownGraceSeconds * 1000);
    await runner.stop();
  };
  try {
    if (workers > 0) await warnIfOversubscribed(heartbeats, { engine, engineCpus, clock, log, heartbeatMs: config.queue.heartbeatSeconds * 1000, name, workers });
  } catch (err) {
    await stop();
    throw err;
  }
  const health: HealthDeps = { db, queue, heartbeats, clock, workers, engineName: engine, ...(monitor ? { engine: monitor } : {}) };
  return { pool, health, workers, engine, stop };
}

/** The pool of pre-started containers a process with this many workers keeps (off without workers). */
export function poolOptions(config: Config, workers: number): PoolOptions {
  const { floor = workers, ceiling = 2 * workers, maxIdleSeconds } = config.queue.pool;
  return { floor: workers > 0 ? floor : 0, ceiling: Math.max(floor, ceiling), maxIdleMs: maxIdleSeconds * 1000 };
}

/**
 * Worker processes sharing one engine each default to one worker per core: three of them on a
 * 2-core engine ran 6 containers at once, each notebook 3.5 times slower. Say so at start.
 */
async function warnIfOversubscribed(
  heartbeats: HeartbeatStore,
  o: { engine: string; engineCpus: number; clock: Clock; log: Logger; heartbeatMs: number; name: string; workers: number },
): Promise<void> {
  if (!o.engineCpus) return;
  const now = o.clock.now();
  const others = (await heartbeats.list(now, 3 * o.heartbeatMs).catch(() => [])).filter((h) => h.engine === o.engine && h.id !== o.name);
  const total = o.workers + others.reduce((n, h) => n + h.workers, 0);
  if (total > o.engineCpus) {
    o.log.warn('the worker processes on this Docker engine oversubscribe it: grading will be slower, not faster (see docs/scaling.md)', {
      engine: o.engine,
      cpus: o.engineCpus,
      workers: total,
      processes: others.length + 1,
    });
  }
}
