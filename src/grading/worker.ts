import type { Clock } from '../lib/clock.js';
import { ConfigError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { Submission, SubmissionStore } from '../submissions/store.js';
import { GradingAbortedError } from './container-runner.js';
import type { ClaimedJob, JobQueue } from './queue.js';
import type { GradingResult } from './result.js';

export type GradeFn = (submission: Submission, notebook: Buffer, signal: AbortSignal) => Promise<GradingResult>;

export interface WorkerPoolOptions {
  queue: JobQueue;
  submissions: SubmissionStore;
  grade: GradeFn;
  clock: Clock;
  log: Logger;
  /** Prefix of each worker's id (host and pid), so leases name their holder. */
  name: string;
  size: number;
  leaseMs: number;
  pollMs: number;
}

/**
 * N grading loops in this process. Each claims a job, renews its lease while grading, and
 * records the result with the job's completion; infrastructure failures are retried with
 * back-off, instructor mistakes (ConfigError) fail the job at once. `stop()` stops claiming,
 * lets running jobs finish within a grace period, and gives back the ones that do not.
 */
export class WorkerPool {
  private stopping = false;
  private readonly sleepers = new Set<() => void>();
  private readonly running = new Map<number, AbortController>();
  private loops: Promise<void>[] = [];

  constructor(private readonly o: WorkerPoolOptions) {}

  start(): void {
    for (let i = 0; i < this.o.size; i++) this.loops.push(this.loop(`${this.o.name}/${i}`));
  }

  /** Work may be waiting: stop sleeping (called by the intake in the same process). */
  notify(): void {
    for (const wake of [...this.sleepers]) wake();
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
  }

  private async loop(id: string): Promise<void> {
    while (!this.stopping) {
      let job: ClaimedJob | undefined;
      try {
        job = await this.o.queue.claim(id, this.o.clock.now(), this.o.leaseMs);
      } catch (err) {
        this.o.log.error('cannot claim grading jobs', { error: (err as Error).message });
      }
      if (!job) {
        await this.idle();
        continue;
      }
      await this.process(id, job);
    }
  }

  private idle(): Promise<void> {
    return new Promise<void>((resolve) => {
      const finish = (): void => {
        clearTimeout(timer);
        this.sleepers.delete(finish);
        resolve();
      };
      const timer = setTimeout(finish, this.o.pollMs);
      this.sleepers.add(finish);
    });
  }

  private async process(id: string, job: ClaimedJob): Promise<void> {
    const { queue, submissions, clock, log } = this.o;
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
    try {
      const submission = await submissions.get(job.submissionId);
      const notebook = await submissions.notebook(job.submissionId);
      if (!submission || notebook === undefined) throw new Error(`submission ${job.submissionId} is missing`);
      const result = await this.o.grade(submission, Buffer.from(notebook), abort.signal);
      if (await queue.complete(job.id, id, submission.id, result, clock.now())) {
        log.info('graded', { submission: submission.id, status: result.status, score: result.score, ms: Math.round(result.durationMs) });
      } else {
        log.warn('lost the lease while grading; the result was not recorded', { job: job.id });
      }
    } catch (err) {
      if (err instanceof GradingAbortedError) {
        if (!leaseLost) await queue.release(job.id, id, clock.now()).catch((e: Error) => log.error('cannot release a job', { job: job.id, error: e.message }));
        return;
      }
      const reason = (err as Error).message;
      if (err instanceof ConfigError) {
        await queue.failForStaff(job, id, reason, clock.now()).catch((e: Error) => log.error('cannot record a grading failure', { job: job.id, error: e.message }));
        log.error('grading failed: the course set-up must be fixed', { job: job.id, submission: job.submissionId, reason });
        return;
      }
      const outcome = await queue.retryOrFail(job, id, reason, clock.now()).catch((e: Error) => {
        log.error('cannot record a grading failure', { job: job.id, error: e.message });
        return 'unknown';
      });
      const level = outcome === 'failed' ? 'error' : 'warn';
      log[level](outcome === 'failed' ? 'grading failed for good' : 'grading failed; will retry', { job: job.id, attempt: job.attempts, reason });
    } finally {
      clearInterval(renew);
      this.running.delete(job.id);
    }
  }
}
