import type { IncomingMessage, ServerResponse } from 'node:http';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** The pre-started containers of the container runner, per image and limits key (grading/warm-pool.ts). */
export interface PoolStats {
  keys: Array<{ key: string; ready: number; starting: number }>;
  /** Jobs that found a ready container, and jobs that started a fresh one. */
  hits: number;
  misses: number;
}

/** The grading queue as /health reports it (the queue's `backlog`). */
export interface QueueBacklog {
  waiting: number;
  backoff: number;
  running: number;
  oldestWaitingMs: number | null;
}

/** The AGS client's access-token lookups since it started. */
export interface TokenCacheStats {
  hits: number;
  misses: number;
  refreshes: number;
}

/** What is read at scrape time, each set by the part of the root that owns it. */
export interface MetricSources {
  backlog?: () => Promise<QueueBacklog>;
  poolStats?: () => PoolStats;
  tokenCache?: () => TokenCacheStats;
}

const QUEUE_OLDEST = 'gofer_queue_oldest_waiting_seconds';

/** How a submission the intake was handed ended. */
export type SubmissionOutcome = 'accepted' | 'duplicate' | 'refused' | 'error';

/**
 * This process's metrics, in a registry of its own (never prom-client's global one), with
 * prom-client's default process metrics. Counters and histograms are moved at the call sites;
 * queue, pool and token-cache figures are read from their sources at each scrape.
 */
export class Metrics {
  readonly registry = new Registry();
  /** Submissions the intake was handed, by outcome. */
  readonly submissions: Counter<'outcome'>;
  /** Seconds from a job's arrival in the queue to its first claim by a worker. */
  readonly queueWait: Histogram;
  /** Seconds a grading took, by the result's status. */
  readonly grading: Histogram<'status'>;
  /** Passback attempts, by how the row ended the attempt. */
  readonly passbacks: Counter<'outcome'>;
  /** Seconds the dispatcher spent on a row each time it took it (finding the pairs and sending), by outcome. */
  readonly passbackAttempt: Histogram<'outcome'>;
  /** Seconds from a grade's recording to the platform's acceptance of it. */
  readonly passbackDelay: Histogram;
  private readonly queueJobs: Gauge<'state'>;
  private readonly queueOldest: Gauge;
  private readonly poolReady: Gauge<'key'>;
  private readonly poolStarting: Gauge<'key'>;
  private readonly poolTakes: Counter<'outcome'>;
  private readonly tokenLookups: Counter<'outcome'>;
  private readonly sources: MetricSources = {};

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.submissions = new Counter({
      name: 'gofer_submissions_total',
      help: 'Submissions handed to the intake, by outcome (accepted, duplicate, refused, error).',
      labelNames: ['outcome'],
      registers,
    });
    for (const outcome of ['accepted', 'duplicate', 'refused', 'error']) this.submissions.inc({ outcome }, 0);
    this.queueJobs = new Gauge({ name: 'gofer_queue_jobs', help: 'Grading jobs by state (waiting, backoff, running), read from the database at scrape time.', labelNames: ['state'], registers });
    // not in the registry while the database does not answer (an unlabelled gauge always has its one series)
    this.queueOldest = new Gauge({ name: QUEUE_OLDEST, help: 'Age of the oldest waiting grading job (0 when none waits).', registers: [] });
    this.queueWait = new Histogram({
      name: 'gofer_queue_wait_seconds',
      help: "Seconds from a grading job's arrival to its first claim by a worker.",
      buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
      registers,
    });
    this.grading = new Histogram({
      name: 'gofer_grading_duration_seconds',
      help: 'Seconds a recorded grading took, by result status.',
      labelNames: ['status'],
      buckets: [1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200],
      registers,
    });
    this.poolReady = new Gauge({ name: 'gofer_pool_ready', help: 'Pre-started containers ready, by pool key.', labelNames: ['key'], registers });
    this.poolStarting = new Gauge({ name: 'gofer_pool_starting', help: 'Pre-started containers starting, by pool key.', labelNames: ['key'], registers });
    this.poolTakes = new Counter({ name: 'gofer_pool_takes_total', help: 'Containers taken for a grading: from the pool (hit) or started then (miss).', labelNames: ['outcome'], registers });
    this.passbacks = new Counter({
      name: 'gofer_passback_outcomes_total',
      help: 'Passback rows the dispatcher settled, by outcome (sent, superseded, late, waiting, failed, retry).',
      labelNames: ['outcome'],
      registers,
    });
    this.passbackAttempt = new Histogram({
      name: 'gofer_passback_attempt_seconds',
      help: 'Seconds the dispatcher spent on a passback row each time it took it, by outcome.',
      labelNames: ['outcome'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.passbackDelay = new Histogram({
      name: 'gofer_passback_delay_seconds',
      help: "Seconds from a grade's recording to the platform's acceptance of it.",
      buckets: [0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400],
      registers,
    });
    this.tokenLookups = new Counter({
      name: 'gofer_lti_token_lookups_total',
      help: 'Access-token lookups of the AGS client: a cached token (hit), none cached (miss), one past its refresh time (refresh).',
      labelNames: ['outcome'],
      registers,
    });
  }

  /** Where the scrape-time figures come from (each part of the root adds its own). */
  collectFrom(sources: MetricSources): void {
    Object.assign(this.sources, sources);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The text format: the scrape-time figures read first, then every metric. */
  async scrape(): Promise<string> {
    const { backlog, poolStats, tokenCache } = this.sources;
    this.queueJobs.reset();
    this.registry.removeSingleMetric(QUEUE_OLDEST);
    // a database that does not answer leaves the queue series out (the scrape still answers)
    const b = backlog ? await backlog().catch(() => undefined) : undefined;
    if (b) {
      this.queueJobs.set({ state: 'waiting' }, b.waiting);
      this.queueJobs.set({ state: 'backoff' }, b.backoff);
      this.queueJobs.set({ state: 'running' }, b.running);
      this.queueOldest.set((b.oldestWaitingMs ?? 0) / 1000);
      this.registry.registerMetric(this.queueOldest);
    }
    const pool = poolStats?.() ?? { keys: [], hits: 0, misses: 0 };
    this.poolReady.reset();
    this.poolStarting.reset();
    for (const k of pool.keys) {
      this.poolReady.set({ key: k.key }, k.ready);
      this.poolStarting.set({ key: k.key }, k.starting);
    }
    setCounter(this.poolTakes, { hit: pool.hits, miss: pool.misses });
    const tokens = tokenCache?.() ?? { hits: 0, misses: 0, refreshes: 0 };
    setCounter(this.tokenLookups, { hit: tokens.hits, miss: tokens.misses, refresh: tokens.refreshes });
    return this.registry.metrics();
  }
}

/** A counter kept elsewhere, copied in at scrape time. */
function setCounter(c: Counter<'outcome'>, values: Record<string, number>): void {
  c.reset();
  for (const [outcome, n] of Object.entries(values)) c.inc({ outcome }, n);
}

/** GET /metrics, for express (serve) and for the worker's own listener. */
export function metricsHandler(metrics: Metrics): (req: IncomingMessage, res: ServerResponse) => void {
  return (_req, res) => {
    metrics.scrape().then(
      (text) => {
        res.writeHead(200, { 'content-type': metrics.contentType, 'cache-control': 'no-store' });
        res.end(text);
      },
      (err: Error) => {
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(`Cannot collect the metrics: ${err.message}\n`);
      },
    );
  };
}
