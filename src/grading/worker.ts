import { assignmentKey } from '../config/courses.js';
import type { Clock } from '../lib/clock.js';
import { NonRetryableError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { Metrics } from '../lib/metrics.js';
import { PollLoop } from '../lib/poll-loop.js';
import { EngineError, GradingAbortedError } from './container-runner.js';
import type { EngineMonitor } from './engine-monitor.js';
import type { HeartbeatStore } from './heartbeats.js';
import { AssignmentMissingError } from './catalog.js';
import type { AssignmentKey, ClaimedJob, GradingJobs, GradingSubject } from './jobs.js';
import type { GradingResult } from './result.js';

export type GradeFn = (submission: GradingSubject, notebook: Buffer, signal: AbortSignal) => Promise<GradingResult>;

export interface WorkerPoolOptions {
  /** The jobs to claim: each comes with its submission and notebook. */
  queue: GradingJobs;
  grade: GradeFn;
  clock: Clock;
  log: Logger;
  /** Prefix of each worker's id (host and pid), so leases name their holder. */
  name: string;
  size: number;
  leaseMs: number;
  pollMs: number;
  /** This process's engine: probed before each claim; nothing is claimed while it is down. */
  engine?: EngineMonitor;
  /** The engine's name (socket or DOCKER_HOST), recorded with each result and heartbeat. */
  engineName?: string;
  heartbeats?: HeartbeatStore;
  heartbeatMs?: number;
  metrics?: Metrics;
}

/**
 * N grading loops in this process. Each claims a job, renews its lease while grading, and
 * records the result with the job's completion; infrastructure failures are retried with
 * back-off, instructor mistakes (ConfigError) fail the job at once. `stop()` stops claiming,
 * lets running jobs finish within a grace period, and gives back the ones that do not.
 */
export class WorkerPool {
  private stopping = false;
  private readonly poll = new PollLoop();
  private readonly running = new Map<number, AbortController>();
  private loops: Promise<void>[] = [];
  /** Assignments this process cannot grade (its configuration lacks them): their jobs are left for others. */
  private readonly cannotGrade = new Map<string, AssignmentKey>();
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly startedAt: number;

  constructor(private readonly o: WorkerPoolOptions) {
    this.startedAt = o.clock.now();
  }

  start(): void {
    if (this.o.size === 0) return;
    for (let i = 0; i < this.o.size; i++) this.loops.push(this.loop(`${this.o.name}/${i}`));
    if (this.o.heartbeats) {
      void this.beat();
      this.heartbeat = setInterval(() => void this.beat(), this.o.heartbeatMs ?? 5000);
    }
  }

  private async beat(): Promise<void> {
    await this.o.heartbeats!.beat({
      id: this.o.name,
      engine: this.o.engineName ?? '',
      engineState: this.o.engine?.state ?? 'unknown',
      workers: this.o.size,
      busy: this.busy,
      startedAt: this.startedAt,
      seenAt: this.o.clock.now(),
    }).catch((err: Error) => this.o.log.warn('cannot record the heartbeat', { error: err.message }));
  }

  /** Work may be waiting: stop sleeping (called by the intake in the same process). */
  notify(): void {
    this.poll.wake();
  }

  get busy(): number {
    return this.running.size;
  }

  /** Gives back running jobs now (a second signal, or the grace period ran out). */
  abortRunning(): void {
    for (const c of this.running.values()) c.abort();
  }

  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    this.notify();
    const all = Promise.all(this.loops);
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([all.then(() => true), new Promise<false>((r) => (timer = setTimeout(() => r(false), graceMs)))]);
    clearTimeout(timer);
    if (!finished) {
      this.o.log.warn('giving back grading jobs still running at shutdown', { count: this.running.size });
      this.abortRunning();
      await all;
    }
    clearInterval(this.heartbeat);
    if (this.o.heartbeats && this.o.size > 0) await this.o.heartbeats.remove(this.o.name).catch(() => undefined);
  }

  private async loop(id: string): Promise<void> {
    while (!this.stopping) {
      let job: ClaimedJob | undefined;
      try {
        if (!this.o.engine || (await this.o.engine.ready())) job = await this.o.queue.claim(id, this.o.clock.now(), this.o.leaseMs, [...this.cannotGrade.values()]);
      } catch (err) {
        this.o.log.error('cannot claim grading jobs', { error: (err as Error).message });
      }
      if (!job) {
        await this.poll.idle(this.o.pollMs);
        continue;
      }
      await this.process(id, job);
    }
  }

  private async process(id: string, job: ClaimedJob): Promise<void> {
    const { queue, clock, log, metrics } = this.o;
    if (job.attempts === 1) metrics?.queueWait.observe(Math.max(0, clock.now() - job.queuedAt) / 1000);
    const abort = new AbortController();
    this.running.set(job.id, abort);
    let leaseLost = false;
    const renew = setInterval(() => {
      queue.renew(job.id, id, clock.now() + this.o.leaseMs).then(
        (held) => {
          if (!held) {
            leaseLost = true;
            abort.abort();
          }
        },
        (err: Error) => log.warn('cannot renew a lease', { job: job.id, error: err.message }),
      );
    }, Math.max(1000, Math.floor(this.o.leaseMs / 3)));
    const { submission } = job;
    try {
      const result = await this.o.grade(submission, job.notebook, abort.signal);
      const producer = { worker: id, engine: this.o.engineName ?? '' };
      if (await queue.complete(job.id, id, submission.id, result, clock.now(), producer)) {
        metrics?.grading.observe({ status: result.status }, result.durationMs / 1000);
        const fields = { submission: submission.id, status: result.status, score: result.score, ms: Math.round(result.durationMs), ...producer };
        // a learner's timeout is rare and worth a look: say why it stopped
        if (result.status === 'timeout') log.warn('graded: the time limit stopped the notebook', { ...fields, cause: result.message });
        else log.info('graded', fields);
      } else {
        log.warn('lost the lease while grading; the result was not recorded', { job: job.id });
      }
    } catch (err) {
      if (err instanceof GradingAbortedError) {
        if (!leaseLost) await queue.release(job.id, id, clock.now()).catch((e: Error) => log.error('cannot release a job', { job: job.id, error: e.message }));
        return;
      }
      const reason = (err as Error).message;
      if (err instanceof EngineError) return await this.engineFailed(id, job, reason);
      if (err instanceof AssignmentMissingError && (await this.othersMayGrade())) return await this.cannotGradeHere(id, job, submission, reason);
      if (err instanceof NonRetryableError) {
        // a ConfigError: the queue logs it at error level, the course set-up must be fixed
        await queue.failForStaff(job, id, reason, clock.now()).catch((e: Error) => log.error('cannot record a grading failure', { job: job.id, error: e.message }));
        return;
      }
      const outcome = await queue.retryOrFail(job, id, reason, clock.now()).catch((e: Error) => {
        log.error('cannot record a grading failure', { job: job.id, error: e.message });
        return 'unknown';
      });
      // a failure for good is logged at error level by the queue
      if (outcome === 'retry') log.warn('grading failed; will retry', { job: job.id, attempt: job.attempts, reason });
      else if (outcome === 'lost') log.warn('lost the lease while grading; the failure was not recorded', { job: job.id, reason });
    } finally {
      clearInterval(renew);
      this.running.delete(job.id);
    }
  }

  /** The engine failed, not the job: hand it on at once without an attempt, and probe before claiming again. */
  private async engineFailed(id: string, job: ClaimedJob, reason: string): Promise<void> {
    const { queue, clock, log } = this.o;
    this.o.engine?.failed(reason);
    const outcome = await queue.engineFailed(job, id, reason, clock.now()).catch((e: Error) => {
      log.error('cannot give back a job after an engine failure', { job: job.id, error: e.message });
      return 'unknown';
    });
    log.warn('the Docker engine failed under a job; it goes back to the queue without using an attempt', { job: job.id, engine: this.o.engineName, outcome, reason });
  }

  /**
   * Whether another worker process is alive (by its heartbeat) that may have the assignment this
   * one lacks (a stale configuration here). When none is, the assignment is gone for good and the
   * job fails for staff at once.
   */
  private async othersMayGrade(): Promise<boolean> {
    const { heartbeats, clock } = this.o;
    if (!heartbeats) return false;
    const alive = await heartbeats.list(clock.now(), 3 * (this.o.heartbeatMs ?? 5000)).catch(() => []);
    return alive.some((h) => h.id !== this.o.name && h.workers > 0);
  }

  /** This host's configuration cannot grade the assignment: leave its jobs to hosts that can, and say so. */
  private async cannotGradeHere(id: string, job: ClaimedJob, submission: GradingSubject, reason: string): Promise<void> {
    const { queue, clock, log } = this.o;
    const key = assignmentKey(submission.course, submission.assignment);
    const first = !this.cannotGrade.has(key);
    this.cannotGrade.set(key, { course: submission.course, assignment: submission.assignment });
    await queue.release(job.id, id, clock.now(), reason).catch((e: Error) => log.error('cannot give back a job', { job: job.id, error: e.message }));
    if (first) {
      log.error("this worker cannot grade an assignment: its jobs are left for other workers; fix this host's configuration and restart it", {
        course: submission.course,
        assignment: submission.assignment,
        reason,
      });
    }
  }
}
