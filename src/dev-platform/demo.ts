import { createHash } from 'node:crypto';
import { allAssignments } from '../config/courses.js';
import type { Config, PlatformConfig } from '../config/schema.js';
import type { Logger } from '../lib/logger.js';
import type { DevComponent, DevPlatform, DevPlatformOptions, DevUser } from './types.js';

export const DEMO_COURSE_KEY = 'course-v1:GoferX+DEMO+2026';

/** A stable opaque id, as edX's anonymous user ids are. */
function anonymousId(username: string): string {
  return createHash('sha256').update(`gofer-demo:${username}`).digest('hex').slice(0, 32);
}

/** The usage key (the resource link id) of an LTI component in a GoferX course run. */
export function blockKey(courseRun: string, name: string): string {
  return `block-v1:GoferX+${courseRun}+2026+type@lti_consumer+block@${name}`;
}

/**
 * A graded LTI component for one Gofer assignment, as a course team sets it up in Studio:
 * custom parameter `assignment=<id>`, declarative AGS, scores accepted past the due date.
 */
export function assignmentComponent(
  c: { courseRun: string; assignment: string; clientId: string; tool: DevComponent['tool'] },
  overrides: Partial<DevComponent> = {},
): DevComponent {
  return {
    usageKey: blockKey(c.courseRun, c.assignment),
    configId: `cfg-${c.assignment}`,
    clientId: c.clientId,
    name: `Notebook ${c.assignment}`,
    weight: 10,
    graded: true,
    acceptGradesPastDue: true,
    custom: [`assignment=${c.assignment}`],
    agsMode: 'declarative',
    tool: c.tool,
    ...overrides,
  };
}

/** The LTI URLs of a Gofer at `toolUrl`, as a course team enters them in Studio: login, launch, keyset. */
export function toolEndpoints(toolUrl: string): { loginUrl: string; launchUrl: string; keysetUrl: string } {
  return { loginUrl: `${toolUrl}/lti/login`, launchUrl: `${toolUrl}/lti`, keysetUrl: `${toolUrl}/lti/keys` };
}

/**
 * The demo course: one graded LTI component per configured assignment (custom parameter
 * `assignment=<id>`, weight = the assignment's points), one deep-linking component, two learners
 * and an instructor. Its course key is a context of no Gofer course unless the configuration
 * says so, so launches go to the default course (or the only one). What a course team would set
 * up in Studio, pointed at Gofer at `toolUrl`.
 */
export function demoPlatformOptions(config: Pick<Config, 'courses' | 'devPlatform'>, toolUrl: string, log?: Logger): DevPlatformOptions {
  const tool = toolEndpoints(toolUrl);
  const components: DevComponent[] = allAssignments(config).map(({ assignment: a }) =>
    assignmentComponent({ courseRun: 'DEMO', assignment: a.id, clientId: `gofer-demo-${a.id}`, tool }, { weight: Math.max(1, Math.round(a.points)), ...(a.due ? { due: a.due } : {}) }),
  );
  components.push({
    usageKey: blockKey('DEMO', 'picker'),
    configId: 'cfg-picker',
    clientId: 'gofer-demo-picker',
    name: 'Notebook chosen by deep linking',
    weight: 1,
    graded: true,
    acceptGradesPastDue: true,
    custom: [],
    agsMode: 'programmatic',
    deepLinking: true,
    tool: { ...tool, deepLinkLaunchUrl: `${toolUrl}/lti` },
  });
  const users: DevUser[] = [
    { username: 'ada', name: 'Ada Lovelace', email: 'ada@example.edu', role: 'learner', sharePii: true, sub: anonymousId('ada') },
    { username: 'bob', name: 'Bob Babbage', email: 'bob@example.edu', role: 'learner', sharePii: true, sub: anonymousId('bob') },
    { username: 'prof', name: 'Grace Hopper', email: 'prof@example.edu', role: 'staff', sharePii: true, sub: anonymousId('prof') },
  ];
  return {
    host: config.devPlatform.host,
    port: config.devPlatform.port,
    courseKey: DEMO_COURSE_KEY,
    courseTitle: 'Gofer demo course',
    components,
    users,
    ...(log ? { log } : {}),
  };
}

/** The platform entry Gofer registers for a running dev platform (what a course team would type in). */
export function devPlatformConfig(platform: DevPlatform, components: DevComponent[]): PlatformConfig {
  const first = components[0];
  if (!first) throw new Error('the dev platform has no components');
  return {
    name: 'Gofer dev platform',
    issuer: platform.issuer,
    authUrl: platform.endpoints(first).authUrl,
    deploymentIds: ['1'],
    clients: components.map((c) => ({ clientId: c.clientId, tokenUrl: platform.endpoints(c).tokenUrl, keysetUrl: platform.endpoints(c).keysetUrl })),
  };
}
