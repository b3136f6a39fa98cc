import type { Clock } from '../lib/clock.js';
import { NonRetryableError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { Metrics } from '../lib/metrics.js';
import { PollLoop } from '../lib/poll-loop.js';
import type { AgsClient } from './ags-client.js';
import { LineItemResolver, type Lookups, type TargetRecords } from './line-items.js';
import type { ClaimedPassback, PassbackOutbox } from './outbox.js';
import { settle, worst, type PairOutcome, type SettlementPolicy } from './outcome.js';
import type { PolicyLookup } from './policy.js';

export interface DispatcherOptions {
  outbox: PassbackOutbox;
  ags: AgsClient;
  /** Identities (hub name ↔ platform sub), bindings (assignment ↔ line item) and who launched which. */
  lti: TargetRecords;
  policy: PolicyLookup;
  clock: Clock;
  log: Logger;
  /** Lease holder's id (host and pid): leases name their holder. */
  name: string;
  /** Scores sent at once (config passback.concurrency). */
  concurrency: number;
  /** How often to look for due rows when idle (config passback.pollMs). */
  pollMs: number;
  /** Sending attempts before a row fails for good (config passback.maxAttempts). */
  maxAttempts: number;
  /** First retry delay; doubles each attempt, ±25 % jitter (config passback.retryDelaySeconds × 1000). */
  retryDelayMs: number;
  /** Longest back-off between two attempts. Default 1 h. */
  maxRetryDelayMs?: number;
  /** A row's lease; must exceed the longest a send can take (a few requests, each with its own timeout). Default 2 min. */
  leaseMs?: number;
  /** When rows waiting for an identity or binding are looked at again without a `wake`. Default 10 min. */
  waitingRecheckMs?: number;
  /**
   * How long an assignment's bindings are reused before being read again. Default 5 s. A launch
   * in this process calls `wakeAssignment`, which forgets them at once.
   */
  bindingCacheMs?: number;
  random?: () => number;
  metrics?: Metrics;
}

/**
 * Drains the passback outbox: leases due rows, finds who the learner is on the platform and where
 * the assignment's grades go (LineItemResolver), sends the score to every such pair, and records
 * the outcome (outcome.ts decides: sent, superseded, late, waiting, failed, or a retry with
 * back-off). A grade recorded in this process wakes it (it subscribes to the outbox). `stop()`
 * stops claiming, lets sends in flight finish within a grace period and gives back the rest.
 */
export class Dispatcher {
  private stopping = false;
  private running: Promise<void> | undefined;
  private readonly poll = new PollLoop();
  private unsubscribe: (() => void) | undefined;
  private readonly sentQueue: ClaimedPassback[] = [];
  private flushing: Promise<void> | undefined;
  private readonly inflight = new Map<number, { done: Promise<void>; abort: AbortController }>();
  private readonly id: string;
  private readonly resolver: LineItemResolver;
  private readonly settlement: SettlementPolicy;

  constructor(private readonly o: DispatcherOptions) {
    this.id = o.name;
    this.resolver = new LineItemResolver({ lti: o.lti, ags: o.ags, log: o.log, bindingCacheMs: o.bindingCacheMs ?? 5000 });
    this.settlement = {
      maxAttempts: o.maxAttempts,
      retryDelayMs: o.retryDelayMs,
      maxRetryDelayMs: o.maxRetryDelayMs ?? 3600_000,
      waitingRecheckMs: o.waitingRecheckMs ?? 600_000,
      random: o.random ?? Math.random,
    };
  }

  start(): void {
    if (this.running) return;
    this.stopping = false;
    this.unsubscribe = this.o.outbox.subscribe(() => this.notify());
    this.running = this.loop();
  }

  /** Rows may be due (a grade was recorded, a learner launched): stop sleeping. */
  notify(): void {
    this.poll.nudge();
  }

  /** Makes a learner's waiting rows due and wakes the loop (the launch handler's `onIdentity`). */
  async wake(owner: string): Promise<number> {
    const n = await this.o.outbox.wake(owner, this.o.clock.now());
    if (n > 0) this.notify();
    return n;
  }

  /** Makes an assignment's waiting rows due (a launch created or updated its binding). */
  async wakeAssignment(course: string, assignment: string): Promise<number> {
    this.resolver.forget(course, assignment);
    const n = await this.o.outbox.wakeAssignment(course, assignment, this.o.clock.now());
    if (n > 0) this.notify();
    return n;
  }

  async stop(graceMs: number): Promise<void> {
    if (!this.running) return;
    this.stopping = true;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.notify();
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([this.running.then(() => true), new Promise<false>((r) => (timer = setTimeout(() => r(false), graceMs)))]);
    clearTimeout(timer);
    if (!finished) {
      this.o.log.warn('giving back scores still being sent at shutdown', { count: this.inflight.size });
      for (const f of this.inflight.values()) f.abort.abort();
      await this.running;
    }
    this.running = undefined;
  }

  /** Sends everything due now and returns when nothing due is left (tests, a one-shot command). */
  async drain(): Promise<void> {
    for (;;) {
      const rows = await this.o.outbox.claim(this.id, this.o.clock.now(), this.leaseMs, this.o.concurrency);
      if (rows.length === 0) break;
      const lookups = this.resolver.lookups();
      await Promise.all(rows.map((r) => this.process(r, new AbortController().signal, lookups)));
    }
    await this.flushSent();
  }

  private get leaseMs(): number {
    return this.o.leaseMs ?? 120_000;
  }

  /**
   * Keeps `concurrency` sends in flight from a small buffer of leased rows, topped up in batches
   * (a claim per row would make the database, not the platform, the limit). Claims again when
   * the buffer runs low and the last claim found more, on `notify`, or every `pollMs`.
   */
  private async loop(): Promise<void> {
    const ready: Array<{ row: ClaimedPassback; lookups: Lookups }> = [];
    let exhausted = false;
    let lastClaim = -Infinity;
    const { concurrency } = this.o;
    while (!this.stopping) {
      while (this.inflight.size < concurrency && ready.length > 0) {
        const next = ready.shift()!;
        this.launch(next.row, next.lookups);
      }
      const room = 2 * concurrency - this.inflight.size - ready.length;
      const idle = this.inflight.size === 0 && ready.length === 0;
      const pollDue = performance.now() - lastClaim >= this.o.pollMs;
      if (room > 0 && (this.poll.takeNudge() || pollDue || (!exhausted && (idle || room >= Math.ceil(concurrency / 2))))) {
        lastClaim = performance.now();
        let rows: ClaimedPassback[] = [];
        try {
          rows = await this.o.outbox.claim(this.id, this.o.clock.now(), this.leaseMs, room);
        } catch (err) {
          this.o.log.error('cannot claim passbacks', { error: (err as Error).message });
        }
        exhausted = rows.length < room;
        const lookups = this.resolver.lookups();
        // read who and where now, while the rows wait for a slot: off each send's critical path
        for (const row of rows) lookups.prefetch(row);
        ready.push(...rows.map((row) => ({ row, lookups })));
        if (rows.length > 0) continue;
      }
      await this.poll.idle(Math.max(1, this.o.pollMs - (performance.now() - lastClaim)));
    }
    // leased but not started: give them back at once
    for (const { row } of ready.splice(0)) {
      await this.o.outbox.release(row.id, this.id).catch((e: Error) => this.o.log.error('cannot give back a passback', { passback: row.id, error: e.message }));
    }
    await Promise.all([...this.inflight.values()].map((f) => f.done));
    await this.flushSent();
  }

  private launch(row: ClaimedPassback, lookups: Lookups): void {
    const abort = new AbortController();
    const done = this.process(row, abort.signal, lookups).finally(() => {
      this.inflight.delete(row.id);
      // a slot freed: look at the buffer again (not a sign of new work, unlike notify)
      this.poll.wake();
    });
    this.inflight.set(row.id, { done, abort });
  }

  /**
   * Delivered rows are marked sent in batches, behind the sends: one write for many rows. A
   * process that dies before the write sends them again later, and the platform answers
   * "already exists", which also counts as sent.
   */
  private markSentLater(row: ClaimedPassback): void {
    this.sentQueue.push(row);
    this.flushing ??= this.flushLoop().finally(() => {
      this.flushing = undefined;
    });
  }

  private async flushLoop(): Promise<void> {
    while (this.sentQueue.length > 0) {
      const batch = this.sentQueue.splice(0, 500);
      try {
        const held = await this.o.outbox.markSentMany(
          batch.map((r) => r.id),
          this.id,
          this.o.clock.now(),
        );
        if (held.length < batch.length) this.o.log.warn('lost the lease of passbacks while sending them; another dispatcher took them over', { count: batch.length - held.length });
      } catch (err) {
        // Left leased: once the lease expires they are sent again and found already there.
        this.o.log.error('cannot record sent passbacks', { count: batch.length, error: (err as Error).message });
      }
    }
  }

  private async flushSent(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  private async process(row: ClaimedPassback, signal: AbortSignal, lookups: Lookups): Promise<void> {
    const { outbox, log } = this.o;
    const started = performance.now();
    try {
      await this.record(row, await this.deliver(row, signal, lookups), started);
    } catch (err) {
      if (signal.aborted) {
        await outbox.release(row.id, this.id).catch((e: Error) => log.error('cannot give back a passback', { passback: row.id, error: e.message }));
        return;
      }
      // The database or a bug, not the platform: try again later like any transient failure,
      // unless no retry can help (a configuration that must be fixed first).
      log.warn('passback attempt failed', { passback: row.id, error: (err as Error).message });
      const detail = `Gofer could not send it: ${(err as Error).message}`;
      await this.record(row, err instanceof NonRetryableError ? { kind: 'failed', status: 0, detail } : { kind: 'retry', detail }, started).catch((e: Error) =>
        log.error('cannot record a passback failure', { passback: row.id, error: e.message }),
      );
    }
  }

  /** Decides the row's pairs and sends to each; the row's outcome is the most pressing of theirs. */
  private async deliver(row: ClaimedPassback, signal: AbortSignal, lookups: Lookups): Promise<PairOutcome> {
    const policy = this.o.policy(row.course, row.assignment);
    if (!policy) return { kind: 'failed', status: 0, detail: `Not sent: assignment ${row.assignment} of course ${row.course} is no longer in Gofer's configuration.` };
    const pairs = await this.resolver.pairs(row, lookups);
    if (!Array.isArray(pairs)) return pairs;
    const outcomes: PairOutcome[] = [];
    for (const [identity, binding] of pairs) outcomes.push(await this.resolver.send(row, policy, identity, binding, signal));
    return worst(outcomes);
  }

  /** Makes the outbox transition `settle` decides for the attempt's outcome (begun at `started`, performance.now()). */
  private async record(row: ClaimedPassback, out: PairOutcome, started: number): Promise<void> {
    const { outbox, log, clock, metrics } = this.o;
    const now = clock.now();
    const s = settle(out, row.attempts, now, this.settlement);
    metrics?.passbacks.inc({ outcome: s.kind });
    metrics?.passbackAttempt.observe({ outcome: s.kind }, (performance.now() - started) / 1000);
    if (s.kind === 'sent') metrics?.passbackDelay.observe(Math.max(0, now - row.gradedAt) / 1000);
    const who = { passback: row.id, owner: row.owner, assignment: row.assignment };
    let held = true;
    switch (s.kind) {
      case 'sent':
        if (s.note) held = await outbox.markSent(row.id, this.id, now, s.note);
        else this.markSentLater(row);
        log.debug('passback sent', { ...who, score: row.score });
        break;
      case 'superseded':
        held = await outbox.markSuperseded(row.id, this.id, s.reason);
        break;
      case 'late':
        held = await outbox.markLate(row.id, this.id, s.reason);
        break;
      case 'waiting':
        held = await outbox.markWaiting(row.id, this.id, s.reason, s.recheckAt);
        break;
      case 'failed':
        held = await outbox.markFailed(row.id, this.id, s.reason, s.attempted);
        log.warn('passback failed for good', { ...who, attempts: row.attempts + (s.attempted ? 1 : 0), reason: s.reason });
        break;
      case 'retry':
        held = await outbox.retryAt(row.id, this.id, s.at, s.reason);
        log.info('passback will be retried', { passback: row.id, attempt: s.attempt, inMs: s.at - now, reason: s.reason });
        break;
    }
    if (!held) log.warn('lost the lease of a passback while sending it; another dispatcher took it over', { passback: row.id });
  }
}
