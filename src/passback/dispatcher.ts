import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { Binding, LaunchRecord, LtiIdentity, LtiStore } from '../lti/store.js';
import type { AgsClient, AgsOutcome, LineItemOutcome } from './ags-client.js';
import type { ClaimedPassback, PassbackOutbox } from './outbox.js';
import { isLate, type AssignmentPolicy, type PolicyLookup } from './policy.js';

export interface DispatcherOptions {
  outbox: PassbackOutbox;
  ags: AgsClient;
  /** Identities (hub name ↔ platform sub), bindings (assignment ↔ line item) and who launched which. */
  lti: Pick<LtiStore, 'identitiesOf' | 'bindingsFor' | 'binding' | 'setLineItem' | 'launchesOf'>;
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
   * in this process calls `wakeAssignment`, which forgets them at once; a changed line item URL
   * is also noticed on its 404.
   */
  bindingCacheMs?: number;
  random?: () => number;
}

/** What happened to one (identity, binding) pair of a row. */
type PairOutcome =
  | AgsOutcome
  | { kind: 'late'; detail: string }
  | { kind: 'waiting'; detail: string };

/**
 * Drains the passback outbox: leases due rows, resolves who the learner is on the platform and
 * where the assignment's grades go, sends the score to every such pair, and records the outcome
 * (sent, superseded, late, waiting, failed, or a retry with back-off). `stop()` stops claiming,
 * lets sends in flight finish within a grace period and gives back the rest.
 */
export class Dispatcher {
  private stopping = false;
  private running: Promise<void> | undefined;
  private readonly sleepers = new Set<() => void>();
  /** New work may be due (notify): claim at the next turn, and do not sleep before it. */
  private nudged = false;
  private readonly sentQueue: ClaimedPassback[] = [];
  private flushing: Promise<void> | undefined;
  /** Line items being looked up or created, per binding: concurrent rows must not create one each. */
  private readonly resolving = new Map<number, Promise<LineItemOutcome>>();
  /** Bindings per assignment: every row of an assignment reads the same few (performance.now() time). */
  private readonly bindingCache = new Map<string, { at: number; bindings: Promise<Binding[]> }>();
  private readonly inflight = new Map<number, { done: Promise<void>; abort: AbortController }>();
  private readonly id: string;

  constructor(private readonly o: DispatcherOptions) {
    this.id = o.name;
  }

  start(): void {
    if (this.running) return;
    this.stopping = false;
    this.running = this.loop();
  }

  /** Rows may be due (a grade was recorded, a learner launched): stop sleeping. */
  notify(): void {
    this.nudged = true;
    for (const wake of [...this.sleepers]) wake();
  }

  /** Makes a learner's waiting rows due and wakes the loop (the launch handler's `onIdentity`). */
  async wake(owner: string): Promise<number> {
    const n = await this.o.outbox.wake(owner, this.o.clock.now());
    if (n > 0) this.notify();
    return n;
  }

  /** Makes an assignment's waiting rows due (a launch created or updated its binding). */
  async wakeAssignment(course: string, assignment: string): Promise<number> {
    this.forgetBindings(course, assignment);
    const n = await this.o.outbox.wakeAssignment(course, assignment, this.o.clock.now());
    if (n > 0) this.notify();
    return n;
  }

  get busy(): number {
    return this.inflight.size;
  }

  async stop(graceMs: number): Promise<void> {
    if (!this.running) return;
    this.stopping = true;
    this.notify();
    const finished = await Promise.race([this.running.then(() => true), sleep(graceMs).then(() => false)]);
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
      const lookups = new Lookups(this.o.lti, (c, a) => this.bindingsFor(c, a));
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
      if (room > 0 && (this.nudged || pollDue || (!exhausted && (idle || room >= Math.ceil(concurrency / 2))))) {
        this.nudged = false;
        lastClaim = performance.now();
        let rows: ClaimedPassback[] = [];
        try {
          rows = await this.o.outbox.claim(this.id, this.o.clock.now(), this.leaseMs, room);
        } catch (err) {
          this.o.log.error('cannot claim passbacks', { error: (err as Error).message });
        }
        exhausted = rows.length < room;
        const lookups = new Lookups(this.o.lti, (c, a) => this.bindingsFor(c, a));
        // read who and where now, while the rows wait for a slot: off each send's critical path
        for (const row of rows) lookups.prefetch(row);
        ready.push(...rows.map((row) => ({ row, lookups })));
        if (rows.length > 0) continue;
      }
      await this.idle(Math.max(1, this.o.pollMs - (performance.now() - lastClaim)));
    }
    // leased but not started: give them back at once
    for (const { row } of ready.splice(0)) {
      await this.o.outbox.release(row.id, this.id, this.o.clock.now()).catch((e: Error) => this.o.log.error('cannot give back a passback', { passback: row.id, error: e.message }));
    }
    await Promise.all([...this.inflight.values()].map((f) => f.done));
    await this.flushSent();
  }

  private launch(row: ClaimedPassback, lookups: Lookups): void {
    const abort = new AbortController();
    const done = this.process(row, abort.signal, lookups).finally(() => {
      this.inflight.delete(row.id);
      this.wakeLoop();
    });
    this.inflight.set(row.id, { done, abort });
  }

  /** A slot freed: look at the buffer again (not a sign of new work, unlike notify). */
  private wakeLoop(): void {
    for (const wake of [...this.sleepers]) wake();
  }

  private idle(ms: number): Promise<void> {
    if (this.nudged) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const finish = (): void => {
        clearTimeout(timer);
        this.sleepers.delete(finish);
        resolve();
      };
      const timer = setTimeout(finish, ms);
      this.sleepers.add(finish);
    });
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
    try {
      await this.settle(row, await this.deliver(row, signal, lookups));
    } catch (err) {
      if (signal.aborted) {
        await outbox.release(row.id, this.id, this.o.clock.now()).catch((e: Error) => log.error('cannot give back a passback', { passback: row.id, error: e.message }));
        return;
      }
      // The database or a bug, not the platform: try again later like any transient failure.
      log.warn('passback attempt failed', { passback: row.id, error: (err as Error).message });
      await this.settle(row, { kind: 'retry', detail: `Gofer could not send it: ${(err as Error).message}` }).catch((e: Error) =>
        log.error('cannot record a passback failure', { passback: row.id, error: e.message }),
      );
    }
  }

  /** Decides the row's pairs and sends to each; the row's outcome is the most pressing of theirs. */
  private async deliver(row: ClaimedPassback, signal: AbortSignal, lookups: Lookups): Promise<PairOutcome> {
    const policy = this.o.policy(row.course, row.assignment);
    if (!policy) return { kind: 'failed', status: 0, detail: `Not sent: assignment ${row.assignment} of course ${row.course} is no longer in Gofer's configuration.` };
    const identities = await lookups.identitiesOf(row.owner);
    if (identities.length === 0) {
      return { kind: 'waiting', detail: `Waiting: hub user ${row.owner} has not launched an assignment from the course yet (or not linked their hub account), so Gofer does not know who they are on the platform.` };
    }
    // A grade goes to the line item of each component this learner launched for the assignment:
    // never to a component or course run they did not launch from.
    const pairsOf = (bs: Binding[], launched: LaunchRecord[]): Array<[LtiIdentity, Binding]> =>
      bs.flatMap((b) => identities.filter((i) => launched.some((l) => l.bindingId === b.id && l.issuer === i.issuer && l.sub === i.sub)).map((i): [LtiIdentity, Binding] => [i, b]));
    let bindings = await lookups.bindingsFor(row.course, row.assignment);
    let pairs = pairsOf(bindings, await lookups.launchesOf(row.owner, identities, row.course, row.assignment));
    if (pairs.length === 0) {
      // the cached bindings and launches may predate a launch: decide "waiting" on a fresh read only
      this.forgetBindings(row.course, row.assignment);
      bindings = await this.bindingsFor(row.course, row.assignment);
      pairs = pairsOf(bindings, await this.o.lti.launchesOf(identities, row.course, row.assignment));
    }
    if (pairs.length === 0) {
      return bindings.length === 0
        ? { kind: 'waiting', detail: `Waiting: no component of the course has been launched for assignment ${row.assignment} yet, so Gofer does not know its line item. Anyone launching it once (staff or learner) binds it.` }
        : { kind: 'waiting', detail: `Waiting: hub user ${row.owner} has not launched assignment ${row.assignment} from the course yet. Gofer sends a grade only to the components a learner launched; they must launch it once.` };
    }
    const outcomes: PairOutcome[] = [];
    for (const [identity, binding] of pairs) outcomes.push(await this.sendPair(row, policy, identity, binding, signal));
    return worst(outcomes);
  }

  private async sendPair(row: ClaimedPassback, policy: AssignmentPolicy, identity: LtiIdentity, cached: Binding, signal: AbortSignal): Promise<PairOutcome> {
    let binding = cached;
    if (policy.late === 'reject' && !isLate(row.receivedAt, policy.due, null) && isLate(row.receivedAt, undefined, binding.endAt)) {
      // "late" is final: decide it on the binding as it is now, not as cached
      binding = (await this.o.lti.binding(binding.id)) ?? binding;
    }
    if (policy.late === 'reject' && isLate(row.receivedAt, policy.due, binding.endAt)) {
      const due = [policy.due?.getTime(), binding.endAt].filter((x): x is number => typeof x === 'number' && row.receivedAt > x);
      return {
        kind: 'late',
        detail: `Not sent: received ${new Date(row.receivedAt).toISOString()}, after the due date ${new Date(Math.min(...due)).toISOString()}, and late work is not accepted (late: reject).`,
      };
    }
    const target = { issuer: binding.issuer, clientId: binding.clientId };
    const score = {
      userId: identity.sub,
      scoreGiven: round6(row.score * policy.points),
      scoreMaximum: policy.points,
      timestamp: row.gradedAt,
    };
    let lineItemUrl = binding.lineItemUrl;
    for (let resolved = 0; ; resolved++) {
      if (!lineItemUrl) {
        if (!binding.lineItemsUrl) return { kind: 'waiting', detail: `Waiting: the platform gave no line item for assignment ${row.assignment}; the next launch of its component will.` };
        const lineItemsUrl = binding.lineItemsUrl;
        let resolving = this.resolving.get(binding.id);
        if (!resolving) {
          resolving = this.o.ags
            .findOrCreateLineItem(
              target,
              lineItemsUrl,
              { resourceLinkId: binding.resourceLinkId, resourceId: row.assignment, label: policy.label, scoreMaximum: policy.points, ...(policy.due ? { endDateTime: policy.due.toISOString() } : {}) },
              signal,
            )
            .finally(() => this.resolving.delete(binding.id));
          this.resolving.set(binding.id, resolving);
        }
        const found = await resolving;
        if (found.kind === 'gone') return { kind: 'retry', status: 404, detail: `${found.detail}: the platform's line item container is gone.` };
        if (!('url' in found)) return found;
        lineItemUrl = found.url;
        await this.o.lti.setLineItem(binding.id, lineItemUrl);
        this.forgetBindings(row.course, row.assignment);
        if (found.kind === 'created') this.o.log.info('passback: created a line item', { course: row.course, assignment: row.assignment, lineItem: lineItemUrl });
      }
      const out = await this.o.ags.postScore(target, lineItemUrl, score, signal);
      if (out.kind !== 'gone') return out;
      if (resolved > 0) return { kind: 'retry', status: 404, detail: out.detail };
      // A launch may have recorded another line item since the bindings were read: use that one.
      this.forgetBindings(row.course, row.assignment);
      const fresh = await this.o.lti.binding(binding.id);
      if (fresh?.lineItemUrl && fresh.lineItemUrl !== lineItemUrl) {
        lineItemUrl = fresh.lineItemUrl;
        continue;
      }
      // The line item was deleted on the platform: look for (or create) it again, once per attempt.
      if (!binding.lineItemsUrl) return { kind: 'waiting', detail: `Waiting: ${out.detail} The next launch of the component will give its new line item.` };
      await this.o.lti.setLineItem(binding.id, null);
      lineItemUrl = null;
    }
  }

  private bindingsFor(course: string, assignment: string): Promise<Binding[]> {
    const key = `${course}\n${assignment}`;
    const now = performance.now();
    const hit = this.bindingCache.get(key);
    if (hit && now - hit.at < (this.o.bindingCacheMs ?? 5000)) return hit.bindings;
    const bindings = this.o.lti.bindingsFor(course, assignment);
    this.bindingCache.set(key, { at: now, bindings });
    bindings.catch(() => this.bindingCache.delete(key));
    return bindings;
  }

  private forgetBindings(course: string, assignment: string): void {
    this.bindingCache.delete(`${course}\n${assignment}`);
  }

  private async settle(row: ClaimedPassback, out: PairOutcome): Promise<void> {
    const { outbox, log, clock } = this.o;
    const now = clock.now();
    let held: boolean;
    switch (out.kind) {
      case 'delivered':
        if (out.note) held = await outbox.markSent(row.id, this.id, now, out.note);
        else {
          this.markSentLater(row);
          held = true;
        }
        log.debug('passback sent', { passback: row.id, owner: row.owner, assignment: row.assignment, score: row.score });
        break;
      case 'superseded':
        held = await outbox.markSuperseded(row.id, this.id, out.detail);
        break;
      case 'late':
        held = await outbox.markLate(row.id, this.id, out.detail);
        break;
      case 'waiting':
        held = await outbox.markWaiting(row.id, this.id, out.detail, now + (this.o.waitingRecheckMs ?? 600_000));
        break;
      case 'failed':
        // status 0: decided without asking the platform
        held = await outbox.markFailed(row.id, this.id, out.detail, out.status !== 0);
        log.warn('passback failed for good', { passback: row.id, owner: row.owner, assignment: row.assignment, reason: out.detail });
        break;
      case 'gone':
      case 'retry': {
        const retryAfter = out.kind === 'retry' ? out.retryAfterMs : undefined;
        const attempts = row.attempts + 1;
        if (attempts >= this.o.maxAttempts) {
          held = await outbox.markFailed(row.id, this.id, `Gave up after ${attempts} attempts: ${out.detail}`);
          log.warn('passback failed for good', { passback: row.id, owner: row.owner, assignment: row.assignment, attempts, reason: out.detail });
          break;
        }
        const at = now + backoffMs(attempts, this.o.retryDelayMs, this.o.maxRetryDelayMs ?? 3600_000, retryAfter, this.o.random ?? Math.random);
        held = await outbox.retryAt(row.id, this.id, at, out.detail);
        log.info('passback will be retried', { passback: row.id, attempt: attempts, inMs: at - now, reason: out.detail });
        break;
      }
    }
    if (!held) log.warn('lost the lease of a passback while sending it; another dispatcher took it over', { passback: row.id });
  }
}

/** Identities and launches read once per claimed batch (a learner's grades often come together); bindings from the dispatcher's short cache. */
class Lookups {
  private readonly identities = new Map<string, Promise<LtiIdentity[]>>();
  private readonly launches = new Map<string, Promise<LaunchRecord[]>>();

  constructor(
    private readonly lti: DispatcherOptions['lti'],
    readonly bindingsFor: (course: string, assignment: string) => Promise<Binding[]>,
  ) {}

  identitiesOf(owner: string): Promise<LtiIdentity[]> {
    let p = this.identities.get(owner);
    if (!p) this.identities.set(owner, (p = this.lti.identitiesOf(owner)));
    return p;
  }

  launchesOf(owner: string, identities: LtiIdentity[], course: string, assignment: string): Promise<LaunchRecord[]> {
    const key = `${owner}\n${course}\n${assignment}`;
    let p = this.launches.get(key);
    if (!p) this.launches.set(key, (p = this.lti.launchesOf(identities, course, assignment)));
    return p;
  }

  /** Starts the reads a row will need; a failure surfaces when the row awaits them. */
  prefetch(row: ClaimedPassback): void {
    this.identitiesOf(row.owner).catch(() => undefined);
    this.bindingsFor(row.course, row.assignment).catch(() => undefined);
  }
}

/**
 * Exponential back-off with ±25 % jitter (so a platform coming back is not hit by every row at
 * once), never sooner than the platform's Retry-After.
 */
export function backoffMs(attempts: number, baseMs: number, maxMs: number, retryAfterMs: number | undefined, random: () => number): number {
  const base = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempts - 1));
  const jittered = Math.round(base * (0.75 + random() * 0.5));
  return Math.max(jittered, retryAfterMs ?? 0);
}

/** Most pressing first: a pair to retry keeps the row alive (delivered pairs answer "already exists" next time). */
function worst(outcomes: PairOutcome[]): PairOutcome {
  const rank: Record<PairOutcome['kind'], number> = { retry: 6, gone: 6, waiting: 5, failed: 4, late: 3, superseded: 2, delivered: 1 };
  let w = outcomes[0]!;
  for (const o of outcomes) if (rank[o.kind] > rank[w.kind]) w = o;
  // Some pairs delivered, the others superseded: the score is where it could go.
  if (w.kind === 'superseded' && outcomes.some((o) => o.kind === 'delivered')) return { kind: 'delivered', status: 200, note: w.detail };
  return w;
}

function round6(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
