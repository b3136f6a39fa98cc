import { assignmentOf, courseForContext, findCourse } from '../config/courses.js';
import type { Config, CourseConfig } from '../config/schema.js';
import { z } from 'zod';
import type { Clock } from '../lib/clock.js';
import { InputError } from '../lib/errors.js';
import type { Binding, LtiIdentity, LtiStore } from './store.js';

const AGS_CLAIM = 'https://purl.imsglobal.org/spec/lti-ags/claim/endpoint';
const STAFF_ROLES = ['membership#Instructor', 'membership#Administrator', 'membership/Instructor#TeachingAssistant'];

/** What Gofer reads from a verified launch (ltijs checked signature, nonce, audience and expiry). */
export interface LaunchClaims {
  issuer: string;
  clientId: string;
  deploymentId: string;
  sub: string;
  name: string | null;
  email: string | null;
  roles: string[];
  contextId: string | null;
  resourceLinkId: string | null;
  custom: Record<string, unknown>;
  ags: { scope?: string[]; lineitems?: string; lineitem?: string } | null;
  /** The whole verified token, for a configured hub-name claim. */
  raw: Record<string, unknown>;
}

/** Who is looking at a Gofer page after a launch; carried signed in the page URL. */
export interface LtiSession {
  issuer: string;
  sub: string;
  course: string;
  assignment: string;
  bindingId: number;
  staff: boolean;
  name: string | null;
}

export type LaunchOutcome =
  | { ok: true; session: LtiSession; identity: LtiIdentity; binding: Binding }
  | { ok: false; status?: number; title: string; message: string };

/** What a launch reads from the line item the platform named (edX: the component's weight and due date). */
export type ReadLineItem = (b: Pick<Binding, 'issuer' | 'clientId' | 'lineItemUrl' | 'scopes'>) => Promise<{ scoreMaximum: number; endAt: number | null } | undefined>;

export function isStaff(roles: string[]): boolean {
  return roles.some((r) => STAFF_ROLES.some((s) => r.endsWith(s)));
}

/**
 * Records who launched and where the assignment's grades go, or says precisely what the course
 * team must change in Studio when the launch cannot be used.
 */
export class LaunchService {
  constructor(
    private readonly deps: {
      config: Pick<Config, 'courses' | 'defaultCourse' | 'lti'>;
      store: LtiStore;
      clock: Clock;
      /** A learner's grades may now be deliverable: wake their waiting passbacks. */
      onIdentity: (hubUser: string) => Promise<void>;
      /** An assignment's line item is now known: wake grades that waited for it. */
      onBinding?: (course: string, assignment: string) => Promise<void>;
      /** Reads the launch's line item with AGS; undefined when the platform did not answer. */
      readLineItem?: ReadLineItem;
    },
  ) {}

  async launch(c: LaunchClaims): Promise<LaunchOutcome> {
    const { config, store, clock } = this.deps;
    const deployments = await this.deploymentIds(c.issuer);
    if (!deployments.includes(c.deploymentId)) {
      return fail(
        'Unknown deployment',
        `This launch came from deployment "${c.deploymentId}" of ${c.issuer}, which Gofer does not accept (known: ${deployments.join(', ') || 'none'}). Add it to lti.platforms[].deploymentIds in Gofer's configuration, or with \`gofer platform add --deployment-id ${c.deploymentId}\`.`,
      );
    }
    const found = this.course(c);
    if ('refused' in found) return { ok: false, status: 403, title: 'Wrong course', message: found.refused };
    const course = found.course;
    if (!course) {
      return fail('Unknown course', `Gofer does not know which of its courses the platform course "${c.contextId ?? '(none)'}" is. Add it to a course's "contexts" in Gofer's configuration.`);
    }
    const wanted = typeof c.custom.assignment === 'string' ? c.custom.assignment.trim() : '';
    if (!wanted) {
      return fail('No assignment', `This component does not say which notebook assignment it is. In Studio, edit the component and add the custom parameter assignment=<id> (one of: ${course.assignments.map((a) => a.id).join(', ')}).`);
    }
    const assignment = assignmentOf(course, wanted, { aliases: true });
    if (!assignment) {
      return fail('Unknown assignment', `The custom parameter assignment=${wanted} names no assignment of course ${course.id}. Use one of: ${course.assignments.map((a) => a.id).join(', ')}.`);
    }
    if (!c.ags || (!c.ags.lineitem && !c.ags.lineitems)) {
      return fail('Grades cannot be sent', 'This launch carries no Assignment and Grade Services claim, so Gofer cannot send grades back. In Studio, tick "This activity is graded" on the component (and give it a weight), then launch again.');
    }
    if (!c.resourceLinkId || !c.contextId) return fail('Incomplete launch', 'The launch has no resource link or course context; launch the component from the course.');

    const now = clock.now();
    const claim = config.lti.hubUserClaim ? claimValue(c.raw, config.lti.hubUserClaim) : undefined;
    const identity = await store.saveIdentity(
      { issuer: c.issuer, sub: c.sub, clientId: c.clientId, deploymentId: c.deploymentId, name: c.name, email: c.email, roles: c.roles, ...(claim ? { hubUser: claim, fromClaim: true } : {}) },
      now,
    );
    const where = { issuer: c.issuer, clientId: c.clientId, lineItemUrl: c.ags.lineitem ?? null, scopes: c.ags.scope ?? [] };
    const read = where.lineItemUrl ? await this.deps.readLineItem?.(where) : undefined;
    const binding = await store.saveBinding(
      {
        ...where,
        deploymentId: c.deploymentId,
        contextId: c.contextId,
        resourceLinkId: c.resourceLinkId,
        course: course.id,
        assignment: assignment.id,
        lineItemsUrl: c.ags.lineitems ?? null,
        endAt: read?.endAt ?? null,
        scoreMaximum: read?.scoreMaximum ?? null,
      },
      now,
    );
    await store.recordLaunch({ issuer: c.issuer, sub: c.sub, bindingId: binding.id }, now);
    if (identity.hubUser) await this.deps.onIdentity(identity.hubUser);
    await this.deps.onBinding?.(course.id, assignment.id);
    return {
      ok: true,
      identity,
      binding,
      session: { issuer: c.issuer, sub: c.sub, course: course.id, assignment: assignment.id, bindingId: binding.id, staff: isStaff(c.roles), name: c.name },
    };
  }

  /** The deployments Gofer accepts from an issuer: the configured ones, or those given to `gofer platform add`. */
  private async deploymentIds(issuer: string): Promise<string[]> {
    const configured = this.deps.config.lti.platforms.filter((p) => p.issuer === issuer).flatMap((p) => p.deploymentIds);
    return [...new Set([...configured, ...(await this.deps.store.deploymentIds(issuer))])];
  }

  /**
   * The Gofer course of a launch: the one listing its context. A custom parameter `course=<id>`
   * is honoured only when the launch's context is one of that course's contexts: a component's
   * custom parameters are edited by the staff of the course it sits in, who must not reach another
   * course's grades that way.
   */
  private course(c: LaunchClaims): { course: CourseConfig | undefined } | { refused: string } {
    const { courses, defaultCourse } = this.deps.config;
    const owner = courseForContext(this.deps.config, c.contextId);
    if (typeof c.custom.course === 'string' && c.custom.course !== owner?.id) {
      const named = findCourse(this.deps.config, c.custom.course);
      return {
        refused: named
          ? `This component's custom parameter course=${c.custom.course} names Gofer course ${named.id}, but this platform course ("${c.contextId ?? '(none)'}") is not one of its contexts. Remove course=${c.custom.course} from the component in Studio${owner ? ` (this platform course is Gofer course ${owner.id})` : ''}, or add "${c.contextId ?? ''}" to the contexts of course ${named.id} in Gofer's configuration.`
          : `This component's custom parameter course=${c.custom.course} names no Gofer course. Remove it from the component in Studio, or use one of: ${courses.map((x) => x.id).join(', ')}.`,
      };
    }
    return {
      course:
        owner ??
        (defaultCourse ? findCourse(this.deps.config, defaultCourse) : undefined) ??
        (courses.length === 1 ? courses[0] : undefined),
    };
  }
}

const text = z.string().min(1);
/** Optional text the platform may send in another shape: anything but text counts as absent. */
const looseText = z.unknown().transform((v) => (typeof v === 'string' ? v : null));
const idOf = z.object({ id: z.union([z.string(), z.number()]).transform(String).nullish() }).passthrough().nullish();

/** The parts of ltijs's verified token object that Gofer reads (ltijs names them, not the LTI spec). */
const ltijsTokenSchema = z
  .object({
    iss: text,
    clientId: text,
    deploymentId: text,
    user: text,
    userInfo: z.object({ name: looseText, email: looseText }).passthrough().nullish(),
    platformContext: z
      .object({
        roles: z.array(z.unknown()).nullish(),
        context: idOf,
        resource: idOf,
        custom: z.record(z.unknown()).nullish(),
        endpoint: z
          .object({ scope: z.array(z.string()).optional(), lineitems: z.string().optional(), lineitem: z.string().optional() })
          .passthrough()
          .nullish(),
      })
      .passthrough()
      .nullish(),
  })
  .passthrough();

/**
 * Reads the AGS claim and the rest of what Gofer needs from ltijs's token object, validated: a
 * token without them is refused with what is missing.
 */
export function claimsFromLtijs(token: unknown): LaunchClaims {
  const parsed = ltijsTokenSchema.safeParse(token);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new InputError(`The launch cannot be read: ${issue.path.join('.') || 'the token'}: ${issue.message}. Launch the assignment again from the course.`);
  }
  const t = parsed.data;
  const ctx = t.platformContext ?? {};
  const endpoint = ctx.endpoint ?? null;
  return {
    issuer: t.iss,
    clientId: t.clientId,
    deploymentId: t.deploymentId,
    sub: t.user,
    name: t.userInfo?.name ?? null,
    email: t.userInfo?.email ?? null,
    roles: (ctx.roles ?? []).map(String),
    contextId: ctx.context?.id ?? null,
    resourceLinkId: ctx.resource?.id ?? null,
    custom: ctx.custom ?? {},
    ags: endpoint,
    raw: { sub: t.user, name: t.userInfo?.name ?? undefined, email: t.userInfo?.email ?? undefined, [AGS_CLAIM]: ctx.endpoint ?? undefined, custom: ctx.custom ?? undefined },
  };
}

function claimValue(raw: Record<string, unknown>, path: string): string | undefined {
  let v: unknown = raw;
  for (const part of path.split('.')) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[part] : undefined;
  return typeof v === 'string' && v ? v : undefined;
}

function fail(title: string, message: string): LaunchOutcome {
  return { ok: false, title, message };
}
