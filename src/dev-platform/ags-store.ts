import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import { formatIsoMicros, parseIsoMicros } from './iso-time.js';
import type { DevComponent, DevCourseRun, DevUser, GradebookEntry, LineItem, StoredScore } from './types.js';

/** DRF's validation error body: field name → messages. */
export type FieldErrors = Record<string, string[]>;

export type StoreAnswer =
  | { status: 200 | 201; body: unknown }
  | { status: 204 }
  | { status: 400; body: FieldErrors }
  | { status: 404 }
  /** An unhandled exception in edX: a 500, and (requests are atomic) nothing saved. */
  | { status: 500; reason: string };

const DATETIME_FORMAT_ERROR = 'Datetime has wrong format. Use one of these formats instead: YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].';
const ACTIVITY = ['Initialized', 'Started', 'InProgress', 'Submitted', 'Completed'];
const GRADING = ['FullyGraded', 'Pending', 'PendingManual', 'Failed', 'NotReady'];
const USAGE_KEY = /^block-v1:([\w\-~.:%]+)\+([\w\-~.:%]+)\+([\w\-~.:%]+)\+type@([\w\-~.:%]+)\+block@([\w\-~.:%]+)$/;

export interface AgsStoreDeps {
  issuer: string;
  runs: DevCourseRun[];
  components: DevComponent[];
  users: DevUser[];
  clock: Clock;
  log: Logger;
}

/**
 * Line items, scores and the gradebook, with edX's rules: one score row per (line item, user)
 * that each accepted POST replaces, strictly increasing timestamps, and publication to the
 * gradebook only under the conditions of edX's `publish_grade_on_score_update`.
 */
export class AgsStore {
  private readonly items: LineItem[] = [];
  private nextPk = 1;
  /** (usage key, sub) → last published, weight-scaled value. */
  private readonly published = new Map<string, number>();
  scoresReceived = 0;

  constructor(private readonly deps: AgsStoreDeps) {
    // Declarative mode: edX creates the component's own line item from its Studio settings.
    for (const c of deps.components) {
      if (c.agsMode !== 'declarative') continue;
      this.insert(c, {
        resourceId: c.usageKey,
        resourceLinkId: c.usageKey,
        scoreMaximum: Math.trunc(c.weight),
        label: c.name,
        tag: '',
        startDateTime: null,
        endDateTime: c.due ? formatIsoMicros(c.due.getTime() * 1000) : null,
      });
    }
  }

  lineItemsUrl(configId: string): string {
    return `${this.deps.issuer}/api/lti_consumer/v1/lti/${configId}/lti-ags`;
  }

  /** The line item a launch advertises: the component's first one (edX: `ltiagslineitem_set.first()`). */
  firstLineItem(configId: string): LineItem | undefined {
    return this.items.find((i) => i.configId === configId);
  }

  all(): LineItem[] {
    return this.items.map((i) => ({ ...i, scores: i.scores.map((s) => ({ ...s })) }));
  }

  list(configId: string, filters: { resource_link_id?: string; resource_id?: string; tag?: string }): unknown[] {
    return this.items
      .filter((i) => i.configId === configId)
      .filter((i) => !filters.resource_link_id || i.resourceLinkId === filters.resource_link_id)
      .filter((i) => !filters.resource_id || i.resourceId === filters.resource_id)
      .filter((i) => !filters.tag || i.tag === filters.tag)
      .map(render);
  }

  get(configId: string, pk: string): LineItem | undefined {
    return this.items.find((i) => i.configId === configId && String(i.pk) === pk);
  }

  create(component: DevComponent, data: unknown): StoreAnswer {
    const v = this.validateLineItem(data, false);
    if (!v.ok) return { status: 400, body: v.errors };
    const item = this.insert(component, {
      resourceId: '',
      tag: '',
      resourceLinkId: null,
      startDateTime: null,
      endDateTime: null,
      ...(v.value as Partial<LineItem>),
    } as Omit<LineItem, 'id' | 'pk' | 'configId' | 'scores'>);
    return { status: 201, body: render(item) };
  }

  update(item: LineItem, data: unknown, partial: boolean): StoreAnswer {
    const v = this.validateLineItem(data, partial);
    if (!v.ok) return { status: 400, body: v.errors };
    Object.assign(item, v.value);
    return { status: 200, body: render(item) };
  }

  remove(item: LineItem): StoreAnswer {
    this.items.splice(this.items.indexOf(item), 1);
    return { status: 204 };
  }

  render(item: LineItem): unknown {
    return render(item);
  }

  /** Results: scores that have a scoreGiven, newest first. */
  results(item: LineItem, userId: string | undefined, limit: string | undefined): StoreAnswer {
    let scores = item.scores.filter((s) => s.scoreGiven !== null).sort((a, b) => b.timestampMicros - a.timestampMicros);
    if (userId) scores = scores.filter((s) => s.userId === userId);
    if (limit) {
      // edX calls int() on it and slices a queryset: non-integers and negative numbers are unhandled errors.
      if (!/^\s*[+-]?\d+\s*$/.test(limit) || Number(limit) < 0) return { status: 500, reason: `limit ${limit} is not a non-negative integer` };
      scores = scores.slice(0, Number(limit));
    }
    return {
      status: 200,
      body: scores.map((s) => ({
        id: `${item.id}/results/${s.userId}`,
        scoreOf: item.id,
        userId: s.userId,
        resultScore: s.scoreGiven,
        resultMaximum: s.scoreMaximum === null || s.scoreMaximum <= 0 ? 1 : s.scoreMaximum,
        comment: s.comment,
      })),
    };
  }

  /** POST {lineitem}/scores, with DRF's validation, the model's full_clean, then the grade signal. */
  postScore(item: LineItem, data: unknown): StoreAnswer {
    if (!data || typeof data !== 'object' || Array.isArray(data)) {
      // The view calls request.data.get('userId') before validating: an AttributeError.
      return { status: 500, reason: 'the score body is not a JSON object' };
    }
    const body = data as Record<string, unknown>;
    const rawUser = body.userId;
    const existing = rawUser === undefined || rawUser === null ? undefined : item.scores.find((s) => s.userId === String(rawUser));
    const errors: FieldErrors = {};
    const add = (field: string, message: string): void => {
      (errors[field] ??= []).push(message);
    };

    let timestampMicros = 0;
    if (!('timestamp' in body)) add('timestamp', 'This field is required.');
    else if (body.timestamp === null) add('timestamp', 'This field may not be null.');
    else {
      const micros = typeof body.timestamp === 'string' ? parseIsoMicros(body.timestamp) : null;
      if (micros === null) add('timestamp', DATETIME_FORMAT_ERROR);
      else if (existing && existing.timestampMicros > micros) add('timestamp', 'Score timestamp can only be updated to a later point in time');
      else if (existing && existing.timestampMicros === micros) add('timestamp', 'Score already exists for the provided timestamp');
      else timestampMicros = micros;
    }
    const scoreGiven = optionalFloat(body, 'scoreGiven', add);
    const scoreMaximum = optionalFloat(body, 'scoreMaximum', add);
    if (!errors.scoreMaximum && !scoreMaximum && body.scoreGiven !== undefined && body.scoreGiven !== null) {
      add('scoreMaximum', 'scoreMaximum is a required field when providing a scoreGiven value.');
    }
    let comment: string | null = null;
    if ('comment' in body && body.comment !== null) {
      const c = charValue(body.comment);
      if (c === null) add('comment', 'Not a valid string.');
      else comment = c;
    }
    const activityProgress = requiredChar(body, 'activityProgress', add);
    const gradingProgress = requiredChar(body, 'gradingProgress', add);
    const userId = requiredChar(body, 'userId', add);
    if (Object.keys(errors).length > 0) return { status: 400, body: errors };

    // Model.full_clean() on save raises a Django ValidationError nobody catches: a 500.
    if (!ACTIVITY.includes(activityProgress!)) return { status: 500, reason: `activityProgress ${JSON.stringify(activityProgress)} is not a valid choice` };
    if (!GRADING.includes(gradingProgress!)) return { status: 500, reason: `gradingProgress ${JSON.stringify(gradingProgress)} is not a valid choice` };
    if ((scoreGiven ?? 0) < 0 || (scoreMaximum ?? 0) < 0) return { status: 500, reason: 'scoreGiven and scoreMaximum must not be negative' };
    if (userId!.length > 255) return { status: 500, reason: 'userId is longer than 255 characters' };
    // The row was looked up by the untrimmed userId; saving under the trimmed one collides.
    if (!existing && item.scores.some((s) => s.userId === userId)) return { status: 500, reason: 'duplicate score row (userId with surrounding spaces)' };

    const score: StoredScore = {
      userId: userId!,
      timestamp: formatIsoMicros(timestampMicros),
      timestampMicros,
      scoreGiven: scoreGiven ?? null,
      scoreMaximum: scoreMaximum ?? null,
      comment,
      activityProgress: activityProgress!,
      gradingProgress: gradingProgress!,
    };
    const publication = this.publication(item, score);
    if (publication.kind === 'error') return { status: 500, reason: publication.reason };
    if (existing) item.scores.splice(item.scores.indexOf(existing), 1, score);
    else item.scores.push(score);
    if (publication.kind === 'publish') this.published.set(key(publication.usageKey, score.userId), publication.value);
    this.scoresReceived++;
    return {
      status: 201,
      body: {
        timestamp: score.timestamp,
        scoreGiven: score.scoreGiven,
        scoreMaximum: score.scoreMaximum,
        comment: score.comment,
        activityProgress: score.activityProgress,
        gradingProgress: score.gradingProgress,
        userId: score.userId,
      },
    };
  }

  gradebook(): GradebookEntry[] {
    const rows: GradebookEntry[] = [];
    for (const u of this.deps.users) {
      for (const c of this.deps.components) rows.push({ username: u.username, usageKey: c.usageKey, published: this.published.get(key(c.usageKey, u.sub)) ?? null });
    }
    return rows;
  }

  /** edX's grade signal: which scores reach the gradebook, and which blow up the request. */
  private publication(item: LineItem, score: StoredScore): { kind: 'skip' } | { kind: 'publish'; usageKey: string; value: number } | { kind: 'error'; reason: string } {
    const component = this.deps.components.find((c) => c.configId === item.configId)!;
    const { log } = this.deps;
    if (item.resourceLinkId !== component.usageKey) {
      log.info('dev-platform: score not published: the line item belongs to another block', { lineItem: item.id, resourceLinkId: item.resourceLinkId, component: component.usageKey });
      return { kind: 'skip' };
    }
    if (score.gradingProgress !== 'FullyGraded' || !score.scoreGiven) {
      if (score.gradingProgress === 'FullyGraded' && score.scoreGiven === 0) log.info('dev-platform: score 0 stored but not published (edX publishes only a truthy scoreGiven)', { lineItem: item.id, userId: score.userId });
      return { kind: 'skip' };
    }
    const pastDue = component.due !== undefined && this.deps.clock.now() > component.due.getTime();
    if (!component.graded || (pastDue && !component.acceptGradesPastDue)) {
      log.info('dev-platform: score not published', { lineItem: item.id, userId: score.userId, reason: component.graded ? 'past due' : 'component not graded' });
      return { kind: 'skip' };
    }
    const user = this.deps.users.find((u) => u.sub === score.userId);
    if (!user) return { kind: 'error', reason: `no user with anonymous id ${score.userId}` };
    const max = score.scoreMaximum!;
    return { kind: 'publish', usageKey: component.usageKey, value: (Math.min(score.scoreGiven, max) / max) * component.weight };
  }

  private insert(component: DevComponent, fields: Omit<LineItem, 'id' | 'pk' | 'configId' | 'scores'>): LineItem {
    const pk = this.nextPk++;
    const item: LineItem = { ...fields, id: `${this.lineItemsUrl(component.configId)}/${pk}`, pk, configId: component.configId, scores: [] };
    this.items.push(item);
    return item;
  }

  /** LtiAgsLineItemSerializer's validation. */
  private validateLineItem(data: unknown, partial: boolean): { ok: true; value: Partial<LineItem> } | { ok: false; errors: FieldErrors } {
    if (!data || typeof data !== 'object' || Array.isArray(data)) {
      const got = Array.isArray(data) ? 'list' : data === null ? 'NoneType' : typeof data === 'string' ? 'str' : typeof data === 'number' ? 'int' : typeof data;
      return { ok: false, errors: { non_field_errors: [`Invalid data. Expected a dictionary, but got ${got}.`] } };
    }
    const body = data as Record<string, unknown>;
    const errors: FieldErrors = {};
    const add = (field: string, message: string): void => {
      (errors[field] ??= []).push(message);
    };
    const value: Partial<LineItem> = {};

    if ('resourceId' in body) {
      const s = charField(body, 'resourceId', { allowBlank: false, max: 255 }, add);
      if (s !== undefined) value.resourceId = s;
    }
    if ('scoreMaximum' in body) {
      const raw = body.scoreMaximum;
      if (raw === null) add('scoreMaximum', 'This field may not be null.');
      else {
        const n = pyIntegerField(raw);
        if (n === null) add('scoreMaximum', 'A valid integer is required.');
        else value.scoreMaximum = n;
      }
    } else if (!partial) add('scoreMaximum', 'This field is required.');
    if ('label' in body) {
      const s = charField(body, 'label', { allowBlank: false, max: 100 }, add);
      if (s !== undefined) value.label = s;
    } else if (!partial) add('label', 'This field is required.');
    if ('tag' in body) {
      const s = charField(body, 'tag', { allowBlank: true, max: 50 }, add);
      if (s !== undefined) value.tag = s;
    }
    if ('resourceLinkId' in body) {
      const raw = body.resourceLinkId;
      if (raw === null) add('resourceLinkId', 'This field may not be null.');
      else {
        const problem = this.usageKeyProblem(raw);
        if (problem) add('resourceLinkId', problem);
        else value.resourceLinkId = String(raw);
      }
    }
    for (const field of ['startDateTime', 'endDateTime'] as const) {
      if (!(field in body)) continue;
      const raw = body[field];
      if (raw === null) add(field, 'This field may not be null.');
      else {
        const micros = typeof raw === 'string' ? parseIsoMicros(raw) : null;
        if (micros === null) add(field, DATETIME_FORMAT_ERROR);
        else value[field] = formatIsoMicros(micros);
      }
    }
    if (Object.keys(errors).length > 0) return { ok: false, errors };
    if (value.resourceId === undefined && value.resourceLinkId === undefined) {
      return { ok: false, errors: { non_field_errors: ['Must provide at least one of resource_id or resource_link_id'] } };
    }
    return { ok: true, value };
  }

  /**
   * edX only parses the usage key. This platform also wants it in this course: a line item
   * pointing elsewhere can never reach the gradebook, which is worth being told.
   */
  private usageKeyProblem(raw: unknown): string | null {
    const text = typeof raw === 'string' ? raw : JSON.stringify(raw);
    const m = typeof raw === 'string' ? USAGE_KEY.exec(raw) : null;
    if (!m) return `Invalid usage key: '${text}'`;
    const course = `course-v1:${m[1]}+${m[2]}+${m[3]}`;
    if (!this.deps.runs.some((r) => r.key === course)) return `Invalid usage key: '${text}' is not in ${this.deps.runs.map((r) => r.key).join(' or ')}`;
    return null;
  }
}

function key(usageKey: string, sub: string): string {
  return `${usageKey}\n${sub}`;
}

function render(item: LineItem): unknown {
  return {
    id: item.id,
    resourceId: item.resourceId,
    scoreMaximum: item.scoreMaximum,
    label: item.label,
    tag: item.tag,
    resourceLinkId: item.resourceLinkId,
    startDateTime: item.startDateTime,
    endDateTime: item.endDateTime,
  };
}

/** DRF CharField: numbers become text, other non-strings are refused; whitespace trimmed. */
function charValue(raw: unknown): string | null {
  if (typeof raw === 'string') return raw.trim();
  if (typeof raw === 'number') return String(raw);
  return null;
}

function charField(body: Record<string, unknown>, field: string, opts: { allowBlank: boolean; max?: number }, add: (f: string, m: string) => void): string | undefined {
  const raw = body[field];
  if (raw === null) {
    add(field, 'This field may not be null.');
    return undefined;
  }
  const s = charValue(raw);
  if (s === null) add(field, 'Not a valid string.');
  else if (s === '' && !opts.allowBlank) add(field, 'This field may not be blank.');
  else if (opts.max !== undefined && s.length > opts.max) add(field, `Ensure this field has no more than ${opts.max} characters.`);
  else return s;
  return undefined;
}

function requiredChar(body: Record<string, unknown>, field: string, add: (f: string, m: string) => void): string | undefined {
  if (!(field in body)) {
    add(field, 'This field is required.');
    return undefined;
  }
  return charField(body, field, { allowBlank: false }, add);
}

/** DRF FloatField with allow_null and default None: undefined when absent or null. */
function optionalFloat(body: Record<string, unknown>, field: string, add: (f: string, m: string) => void): number | undefined {
  const raw = body[field];
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw === 'number' && Number.isFinite(raw)) return raw;
  if (typeof raw === 'boolean') return raw ? 1 : 0;
  if (typeof raw === 'string' && /^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i.test(raw)) return Number(raw);
  add(field, 'A valid number is required.');
  return undefined;
}

/** DRF IntegerField: integers, integral floats (10.0) and their strings; nothing fractional. */
function pyIntegerField(raw: unknown): number | null {
  if (typeof raw === 'number') return Number.isInteger(raw) ? raw : null;
  if (typeof raw === 'string' && /^\s*[+-]?\d+(\.0*)?\s*$/.test(raw)) return Math.trunc(Number(raw));
  return null;
}
