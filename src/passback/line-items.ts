import { assignmentKey } from '../config/courses.js';
import type { Logger } from '../lib/logger.js';
import type { Binding, LaunchRecord, LtiIdentity, LtiStore } from '../lti/store.js';
import type { AgsClient, AgsOutcome, LineItemOutcome } from './ags-client.js';
import type { ClaimedPassback } from './outbox.js';
import { scoreGiven, type PairOutcome } from './outcome.js';
import { isLate, type AssignmentPolicy } from './policy.js';

/** The LTI records a row's targets are read from: identities (hub name ↔ platform sub), bindings (assignment ↔ line item) and who launched which. */
export type TargetRecords = Pick<LtiStore, 'identitiesOf' | 'bindingsFor' | 'binding' | 'setLineItem' | 'launchesOf'>;

/** Where one grade goes: a learner's identity on a platform and the binding of a component they launched. */
export type Pair = [LtiIdentity, Binding];

/**
 * Finds where a grade goes and sends it there: the (identity, binding) pairs of a row, and each
 * pair's line item, looked up or created once per binding however many rows need it at once.
 * An assignment's bindings are kept `bindingCacheMs` (performance.now() time); `forget` drops
 * them at once (a launch in this process changed them), and a changed line item URL is also
 * noticed on its 404.
 */
export class LineItemResolver {
  /** Line items being looked up or created, per binding: concurrent rows must not create one each. */
  private readonly resolving = new Map<number, Promise<LineItemOutcome>>();
  private readonly bindingCache = new Map<string, { at: number; bindings: Promise<Binding[]> }>();

  constructor(
    private readonly o: { lti: TargetRecords; ags: AgsClient; log: Logger; bindingCacheMs: number },
  ) {}

  /** A fresh set of per-batch lookups (identities and launches read once per claimed batch). */
  lookups(): Lookups {
    return new Lookups(this.o.lti, (c, a) => this.bindingsFor(c, a));
  }

  bindingsFor(course: string, assignment: string): Promise<Binding[]> {
    const key = assignmentKey(course, assignment);
    const now = performance.now();
    const hit = this.bindingCache.get(key);
    if (hit && now - hit.at < this.o.bindingCacheMs) return hit.bindings;
    const bindings = this.o.lti.bindingsFor(course, assignment);
    this.bindingCache.set(key, { at: now, bindings });
    bindings.catch(() => this.bindingCache.delete(key));
    return bindings;
  }

  forget(course: string, assignment: string): void {
    this.bindingCache.delete(assignmentKey(course, assignment));
  }

  /**
   * The pairs a row's grade goes to: the line item of each component this learner launched for
   * the assignment, never one they did not launch from. None: the row waits, and says for what.
   * "Waiting" is decided on a fresh read only (cached bindings and launches may predate a launch).
   */
  async pairs(row: ClaimedPassback, lookups: Lookups): Promise<Pair[] | Extract<PairOutcome, { kind: 'waiting' }>> {
    const identities = await lookups.identitiesOf(row.owner);
    if (identities.length === 0) {
      return { kind: 'waiting', detail: `Waiting: hub user ${row.owner} has not launched an assignment from the course yet (or not linked their hub account), so Gofer does not know who they are on the platform.` };
    }
    const pairsOf = (bs: Binding[], launched: LaunchRecord[]): Pair[] =>
      bs.flatMap((b) => identities.filter((i) => launched.some((l) => l.bindingId === b.id && l.issuer === i.issuer && l.sub === i.sub)).map((i): Pair => [i, b]));
    const cached = pairsOf(await lookups.bindingsFor(row.course, row.assignment), await lookups.launchesOf(row.owner, identities, row.course, row.assignment));
    if (cached.length > 0) return cached;
    this.forget(row.course, row.assignment);
    const bindings = await this.bindingsFor(row.course, row.assignment);
    const fresh = pairsOf(bindings, await this.o.lti.launchesOf(identities, row.course, row.assignment));
    if (fresh.length > 0) return fresh;
    return bindings.length === 0
      ? { kind: 'waiting', detail: `Waiting: no component of the course has been launched for assignment ${row.assignment} yet, so Gofer does not know its line item. Anyone launching it once (staff or learner) binds it.` }
      : { kind: 'waiting', detail: `Waiting: hub user ${row.owner} has not launched assignment ${row.assignment} from the course yet. Gofer sends a grade only to the components a learner launched; they must launch it once.` };
  }

  /**
   * Sends the row's score to one pair. A line item the platform says is gone (404) is looked up
   * again once per attempt: the binding may name a newer one (a launch recorded it), or it is
   * found or created anew.
   */
  async send(row: ClaimedPassback, policy: AssignmentPolicy, identity: LtiIdentity, cached: Binding, signal: AbortSignal): Promise<PairOutcome> {
    const binding = await this.forLateness(row, policy, cached);
    if (policy.late === 'reject' && isLate(row.receivedAt, policy.due, binding.endAt)) {
      const due = [policy.due?.getTime(), binding.endAt].filter((x): x is number => typeof x === 'number' && row.receivedAt > x);
      return {
        kind: 'late',
        detail: `Not sent: received ${new Date(row.receivedAt).toISOString()}, after the due date ${new Date(Math.min(...due)).toISOString()}, and late work is not accepted (late: reject).`,
      };
    }
    const post = (url: string): Promise<AgsOutcome> =>
      this.o.ags.postScore(
        { issuer: binding.issuer, clientId: binding.clientId },
        url,
        { userId: identity.sub, scoreGiven: scoreGiven(row.score, policy.points), scoreMaximum: policy.points, timestamp: row.gradedAt },
        signal,
      );
    const first = binding.lineItemUrl ?? (await this.lineItem(row, policy, binding, signal));
    if (typeof first !== 'string') return first;
    const out = await post(first);
    if (out.kind !== 'gone') return out;

    // A launch may have recorded another line item since the bindings were read: use that one.
    this.forget(row.course, row.assignment);
    const fresh = await this.o.lti.binding(binding.id);
    let again: string | PairOutcome;
    if (fresh?.lineItemUrl && fresh.lineItemUrl !== first) again = fresh.lineItemUrl;
    else if (!binding.lineItemsUrl) return { kind: 'waiting', detail: `Waiting: ${out.detail} The next launch of the component will give its new line item.` };
    else {
      // deleted on the platform: look for (or create) it again
      await this.o.lti.setLineItem(binding.id, null);
      again = await this.lineItem(row, policy, binding, signal);
    }
    if (typeof again !== 'string') return again;
    const second = await post(again);
    return second.kind === 'gone' ? { kind: 'retry', status: 404, detail: second.detail } : second;
  }

  /** "Late" is final: when only the cached binding's end date makes a row late, decide it on the binding as it is now. */
  private async forLateness(row: ClaimedPassback, policy: AssignmentPolicy, binding: Binding): Promise<Binding> {
    if (policy.late === 'reject' && !isLate(row.receivedAt, policy.due, null) && isLate(row.receivedAt, undefined, binding.endAt)) {
      return (await this.o.lti.binding(binding.id)) ?? binding;
    }
    return binding;
  }

  /** The binding's line item, found or created on the platform (once for concurrent rows) and recorded; or why there is none. */
  private async lineItem(row: ClaimedPassback, policy: AssignmentPolicy, binding: Binding, signal: AbortSignal): Promise<string | PairOutcome> {
    const lineItemsUrl = binding.lineItemsUrl;
    if (!lineItemsUrl) return { kind: 'waiting', detail: `Waiting: the platform gave no line item for assignment ${row.assignment}; the next launch of its component will.` };
    let resolving = this.resolving.get(binding.id);
    if (!resolving) {
      resolving = this.o.ags
        .findOrCreateLineItem(
          { issuer: binding.issuer, clientId: binding.clientId },
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
    await this.o.lti.setLineItem(binding.id, found.url);
    this.forget(row.course, row.assignment);
    if (found.kind === 'created') this.o.log.info('passback: created a line item', { course: row.course, assignment: row.assignment, lineItem: found.url });
    return found.url;
  }
}

/** Identities and launches read once per claimed batch (a learner's grades often come together); bindings from the resolver's short cache. */
export class Lookups {
  private readonly identities = new Map<string, Promise<LtiIdentity[]>>();
  private readonly launches = new Map<string, Promise<LaunchRecord[]>>();

  constructor(
    private readonly lti: TargetRecords,
    readonly bindingsFor: (course: string, assignment: string) => Promise<Binding[]>,
  ) {}

  identitiesOf(owner: string): Promise<LtiIdentity[]> {
    let p = this.identities.get(owner);
    if (!p) this.identities.set(owner, (p = this.lti.identitiesOf(owner)));
    return p;
  }

  launchesOf(owner: string, identities: LtiIdentity[], course: string, assignment: string): Promise<LaunchRecord[]> {
    const key = `${owner}\u0000${assignmentKey(course, assignment)}`;
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
