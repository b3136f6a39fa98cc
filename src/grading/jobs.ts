import type { GradingResult } from './result.js';
import type { Producer } from './result-store.js';

/** What grading needs of a submission: who sent it, for which assignment. */
export interface GradingSubject {
  id: string;
  owner: string;
  course: string;
  assignment: string;
}

/** An assignment a worker cannot grade (its configuration lacks it): that worker claims none of its jobs. */
export interface AssignmentKey {
  course: string;
  assignment: string;
}

/** A job a worker holds the lease of, with everything grading it needs. */
export interface ClaimedJob {
  id: number;
  submissionId: string;
  attempts: number;
  maxAttempts: number;
  /** When the job was added (its submission's arrival, or the regrade's). */
  queuedAt: number;
  submission: GradingSubject;
  notebook: Buffer;
}

/** Jobs ready now apart from jobs in back-off after a failure, and how long the oldest ready one has waited. */
export interface Backlog {
  waiting: number;
  backoff: number;
  running: number;
  oldestWaitingMs: number | null;
}

/**
 * The grading jobs as the workers see them (the submissions' JobQueue keeps them). Every
 * transition is guarded by the worker's lease: one that lost it changes nothing.
 */
export interface GradingJobs {
  claim(workerId: string, now: number, leaseMs: number, skip?: AssignmentKey[]): Promise<ClaimedJob | undefined>;
  renew(jobId: number, workerId: string, until: number): Promise<boolean>;
  complete(jobId: number, workerId: string, submissionId: string, result: GradingResult, now: number, producer?: Producer): Promise<boolean>;
  retryOrFail(job: ClaimedJob, workerId: string, reason: string, now: number): Promise<'retry' | 'failed' | 'lost'>;
  failForStaff(job: ClaimedJob, workerId: string, reason: string, now: number): Promise<void>;
  release(jobId: number, workerId: string, now: number, reason?: string): Promise<void>;
  engineFailed(job: ClaimedJob, workerId: string, reason: string, now: number): Promise<'released' | 'retry' | 'failed' | 'lost'>;
  backlog(now: number): Promise<Backlog>;
}
