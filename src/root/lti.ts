import { HeartbeatStore } from '../grading/heartbeats.js';
import { quietHosts } from '../web/quiet-hosts.js';
import type { PassbackActions } from '../passback/actions.js';
import type { Request, RequestHandler } from 'express';
import { allAssignments } from '../config/courses.js';
import { ltiCookies, type PlatformConfig } from '../config/schema.js';
import { ConfigError } from '../lib/errors.js';
import { LaunchService } from '../lti/launch.js';
import { ltiBaseUrl, registerPlatforms, setupLti } from '../lti/provider.js';
import { LtiStore } from '../lti/store.js';
import type { PassbackOutbox } from '../passback/outbox.js';
import type { PolicyLookup } from '../passback/policy.js';
import { cookieSecret, type HubOAuth } from '../submissions/hub-oauth.js';
import { Signer } from '../submissions/identity.js';
import type { Intake } from '../submissions/intake.js';
import type { SubmissionStore } from '../submissions/store.js';
import type { BrowserSessions } from '../submissions/browser-sessions.js';
import { origins, partitionCrossSiteCookies } from '../web/headers.js';
import { linkRouter, ltiPagesRouter } from '../web/lti-pages.js';
import { StaffActions } from '../web/staff/actions-store.js';
import { hubStaffRouter } from '../web/staff/hub.js';
import { CourseReport } from '../web/staff/report.js';
import { LtiPageSessions } from '../web/lti-session.js';
import type { RootDeps } from './deps.js';
import { createPassback } from './passback.js';

export const LTI_PORT_PROBLEM = 'LTI needs a fixed server.port (or lti.url): platforms must know where Gofer is.';

export interface Lti {
  /** Routers to mount on Gofer's app: the launch (/lti), the pages after it (/app), account linking. */
  mounts: Array<[string, RequestHandler]>;
  /** The platforms' origins, which may frame Gofer's pages. */
  frameAncestors: string[];
  /** ltijs's app, for the route listing. */
  app: RequestHandler;
  /** What the pages may do with passback (states, resend). */
  passback: PassbackActions;
  stop(): Promise<void>;
}

/**
 * LTI 1.3: ltijs with Gofer's launch handling, the platforms registered, the passback
 * dispatcher (started) and the pages reached after a launch.
 */
export async function createLti(
  deps: RootDeps & {
    hub: { prefix: string; host: string; port: number };
    sessions: BrowserSessions;
    oauth: HubOAuth | undefined;
    intake: Intake;
    submissions: SubmissionStore;
    outbox: PassbackOutbox;
    policy: PolicyLookup;
    wakeGrading: () => void;
    /** Whether Gofer is a hub service (pages speak of JupyterHub only then). */
    hubConfigured: boolean;
    /** Platforms besides the configured ones (the dev platform `gofer serve` started beside Gofer). */
    platforms?: PlatformConfig[];
  },
): Promise<Lti> {
  const { config, db, env, clock, log, hub, oauth } = deps;
  const toolUrl = ltiBaseUrl(config, hub);
  if (!config.lti.url && hub.port === 0) throw new ConfigError(LTI_PORT_PROBLEM);
  const store = new LtiStore(db);
  const heartbeats = new HeartbeatStore(db);
  const signer = new Signer(cookieSecret(config.server.secret, env, config.dataDir));
  const pageSessions = new LtiPageSessions({ sessions: deps.sessions, cookies: ltiCookies(config.lti), clock });
  const passback = createPassback({ config, db, env, clock, log, metrics: deps.metrics, outbox: deps.outbox, policy: deps.policy, lti: store });
  try {
    const { dispatcher, ags } = passback;
    const wake = async (hubUser: string): Promise<void> => {
      await dispatcher.wake(hubUser);
    };
    const launches = new LaunchService({
      config,
      store,
      clock,
      onIdentity: wake,
      onBinding: async (course, assignment) => {
        await dispatcher.wakeAssignment(course, assignment);
      },
      readLineItem: async (b) => {
        const read = await ags.readLineItem({ issuer: b.issuer, clientId: b.clientId }, b.lineItemUrl!, b.scopes);
        if (read.kind === 'read') return read;
        log.warn('launch: cannot read the line item', { lineItem: b.lineItemUrl, reason: read.detail });
        return undefined;
      },
    });
    const mount = await setupLti({
      config,
      db,
      clock,
      log,
      env,
      toolUrl,
      launches,
      openPage: (session, req, res) => pageSessions.open(req, res, session),
      assignmentsForDeepLinking: () => allAssignments(config).map(({ course, assignment }) => ({ id: assignment.id, title: `${course.id}: ${assignment.id}` })),
    });
    const platforms = [...config.lti.platforms, ...(deps.platforms ?? [])];
    await registerPlatforms(mount.provider, platforms, log);
    const hubIdentity = oauth ? { hubIdentity: (req: Request) => oauth.identity(req) } : {};
    const mounts: Array<[string, RequestHandler]> = [];
    if (ltiCookies(config.lti).partitioned) mounts.push(['/lti', partitionCrossSiteCookies()]);
    mounts.push(['/lti', mount.app]);
    mounts.push([
      '/app',
      ltiPagesRouter({
        config,
        store,
        submissions: deps.submissions,
        signer,
        pageSessions,
        clock,
        hubConfigured: deps.hubConfigured,
        db,
        outbox: deps.outbox,
        notifyPassback: () => passback.dispatcher.notify(),
        prefix: hub.prefix,
        passback: passback.actions,
        onLinked: wake,
        wakeGrading: deps.wakeGrading,
        submit: (who, file, target) => deps.intake.submit(who, { kind: 'file', bytes: file }, target),
        quietHosts: (at) => quietHosts(heartbeats, at, config.queue.heartbeatSeconds * 1000),
        ...hubIdentity,
      }),
    ]);
    mounts.push([
      hub.prefix,
      linkRouter({
        signer,
        store,
        clock,
        onLinked: wake,
        prefix: hub.prefix,
        ...(oauth ? { ...hubIdentity, xsrfToken: (req: Request) => oauth.xsrfToken(req), checkXsrf: (req: Request) => oauth.checkXsrf(req) } : {}),
      }),
    ]);
    if (oauth) {
      // the same staff pages for course instructors who log in through the hub
      mounts.push([
        hub.prefix,
        hubStaffRouter({
          config,
          report: new CourseReport(db),
          submissions: deps.submissions,
          clock,
          actions: new StaffActions(db),
          outbox: deps.outbox,
          notifyPassback: () => passback.dispatcher.notify(),
          wakeGrading: deps.wakeGrading,
          resend: (id) => passback.actions.resend(id),
          signer,
          identity: (req) => oauth.identity(req),
          prefix: hub.prefix,
        }),
      ]);
    }
    return { mounts, frameAncestors: origins(platforms.map((p) => p.issuer)), app: mount.app, passback: passback.actions, stop: () => passback.stop() };
  } catch (err) {
    await passback.stop();
    throw err;
  }
}
