import { landingRouter } from '../web/landing.js';
import type { Server } from 'node:http';
import { buildApp } from '../app.js';
import type { Environment } from '../config/load.js';
import type { Config, PlatformConfig } from '../config/schema.js';
import { checkHealth, healthHandler, startHealthServer, type HealthDeps } from '../grading/health.js';
import { uuid } from '../lib/clock.js';
import { metricsHandler, type Metrics } from '../lib/metrics.js';
import { listRoutes, type RouteEntry } from '../lib/routes.js';
import { ltiBaseUrl } from '../lti/provider.js';
import type { PassbackOutbox } from '../passback/outbox.js';
import type { PolicyLookup } from '../passback/policy.js';
import { ExaminerPool } from '../submissions/examine.js';
import { cookieSecret, HubOAuth, hubOAuthSettings } from '../submissions/hub-oauth.js';
import { ApiTokenStore, Authenticator, HubClient } from '../submissions/identity.js';
import { Intake } from '../submissions/intake.js';
import type { SubmissionStore } from '../submissions/store.js';
import { BrowserSessions } from '../submissions/browser-sessions.js';
import { origins } from '../web/headers.js';
import type { RootDeps } from './deps.js';
import { createLti, type Lti } from './lti.js';

/** Where the hub tells a managed service to listen and what prefix it is reached at. */
export function hubSettings(config: Config, env: Environment): { host: string; port: number; prefix: string; apiUrl?: string } {
  let { host, port } = config.server;
  if (env.JUPYTERHUB_SERVICE_URL) {
    const u = new URL(env.JUPYTERHUB_SERVICE_URL);
    host = u.hostname.replace(/^\[|\]$/g, '');
    port = Number(u.port || 80);
  }
  if (env.GOFER_PORT) port = Number(env.GOFER_PORT);
  const prefix = config.server.prefix ?? env.JUPYTERHUB_SERVICE_PREFIX ?? '/services/gofer/';
  const apiUrl = config.hub.apiUrl ?? env.JUPYTERHUB_API_URL;
  return { host, port, prefix, ...(apiUrl ? { apiUrl } : {}) };
}

/** The scopes a hub token must carry to submit to this service (JupyterHub 2+ tells managed services). */
function hubScopes(env: Environment): string[] {
  if (env.JUPYTERHUB_OAUTH_ACCESS_SCOPES) {
    try {
      const scopes = JSON.parse(env.JUPYTERHUB_OAUTH_ACCESS_SCOPES) as unknown;
      if (Array.isArray(scopes) && scopes.length) return scopes.map(String);
    } catch {
      // fall through to the defaults
    }
  }
  const name = env.JUPYTERHUB_SERVICE_NAME ?? 'gofer';
  return ['access:services', `access:services!service=${name}`];
}

export interface Http {
  url: string;
  stop(): Promise<void>;
}

/**
 * `gofer serve`'s HTTP side: identity (hub, API tokens, hub login), intake, LTI when it is on,
 * the app, listening. Stops in reverse order (listener, LTI and its dispatcher, examiners).
 */
export async function createHttp(
  deps: RootDeps & {
    submissions: SubmissionStore;
    health: HealthDeps;
    wakeGrading: () => void;
    /** The passback outbox when LTI is on. */
    outbox: PassbackOutbox | undefined;
    policy: PolicyLookup;
    platforms?: PlatformConfig[];
    /** Routes of a dev platform started beside Gofer, for the route listing. */
    devPlatform?: { url: string; routes(): RouteEntry[] };
    workers: number;
    engine: string;
    describeDb: string;
  },
): Promise<Http> {
  const { config, db, env, clock, log, submissions } = deps;
  const stops: Array<() => Promise<void>> = [];
  const stop = async (): Promise<void> => {
    for (const s of stops.reverse()) await s().catch((err: Error) => log.warn('while stopping', { error: err.message }));
  };
  try {
    const hub = hubSettings(config, env);
    const hubClient = hub.apiUrl ? new HubClient(hub.apiUrl, { cacheMs: config.hub.cacheSeconds * 1000, clock, requiredScopes: hubScopes(env) }) : undefined;
    const auth = new Authenticator(hubClient, new ApiTokenStore(db, clock));
    const oauthSettings = hubOAuthSettings(env, hub.prefix, config.hub.publicUrl);
    const sessions = new BrowserSessions(db);
    const oauth = hubClient && oauthSettings ? new HubOAuth(oauthSettings, hubClient, cookieSecret(config.server.secret, env, config.dataDir), clock, hub.prefix, sessions) : undefined;
    const examiners = new ExaminerPool();
    stops.push(() => examiners.close());
    const intake = new Intake({ config, submissions, examiners, clock, ids: uuid, log, onQueued: deps.wakeGrading, metrics: deps.metrics });
    let lti: Lti | undefined;
    if (deps.outbox) {
      lti = await createLti({
        hubConfigured: hubClient !== undefined,
        metrics: deps.metrics,
        config,
        db,
        env,
        clock,
        log,
        hub,
        sessions,
        oauth,
        intake,
        submissions,
        outbox: deps.outbox,
        policy: deps.policy,
        wakeGrading: deps.wakeGrading,
        ...(deps.platforms ? { platforms: deps.platforms } : {}),
      });
      stops.push(lti.stop);
    }
    const frameAncestors = [...origins(config.lti.frameAncestors), ...(lti?.frameAncestors ?? [])];
    const app = buildApp({
      config,
      log,
      clock,
      ...(deps.outbox ? { passbacks: deps.outbox } : {}),
      ...(lti ? { passbackStates: (ids: string[]) => lti!.passback.states(ids) } : {}),
      prefix: hub.prefix,
      intake,
      auth,
      submissions,
      mounts: lti?.mounts ?? [],
      frameAncestors,
      health: healthHandler(deps.health),
      metrics: metricsHandler(deps.metrics),
      landing: landingRouter({
        config,
        prefix: hub.prefix,
        health: () => checkHealth(deps.health),
        ...(lti ? { ltiUrl: ltiBaseUrl(config, hub) } : {}),
        ...(deps.devPlatform ? { devPlatformUrl: deps.devPlatform.url } : {}),
      }),
      ...(oauth ? { oauth } : {}),
    });
    const server = await new Promise<Server>((resolve, reject) => {
      const s = app.listen(hub.port, hub.host, () => resolve(s));
      s.once('error', reject);
    });
    stops.push(async () => {
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeIdleConnections();
      await closed;
    });
    const addr = server.address();
    const port = typeof addr === 'object' && addr ? addr.port : hub.port;
    const url = `http://${hub.host.includes(':') ? `[${hub.host}]` : hub.host}:${port}`;
    log.info(`Gofer listening on ${url}${hub.prefix}`, { workers: deps.workers, hub: hub.apiUrl ?? 'none', ...(deps.workers > 0 ? { engine: deps.engine } : {}), database: deps.describeDb });
    if (lti) {
      const base = ltiBaseUrl(config, hub);
      log.info(`LTI on: login ${base}/lti/login   launch ${base}/lti   keyset ${base}/lti/keys`);
    } else {
      log.warn('LTI off: no platform is configured (lti.platforms) or added (gofer platform add), lti.url is unset and the dev platform is off; /lti answers 404');
    }
    log.debug('routes', {
      gofer: [...listRoutes(app), ...(lti ? listRoutes(lti.app, '/lti') : [])],
      ...(deps.devPlatform ? { devPlatform: { url: deps.devPlatform.url, routes: deps.devPlatform.routes() } } : {}),
    });
    return { url, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** `gofer worker`'s /health and /metrics listener, when worker.healthPort is set. */
export async function createHealthHttp(config: Config, health: HealthDeps, metrics: Metrics): Promise<Http | undefined> {
  if (config.worker.healthPort === undefined) return undefined;
  const server = await startHealthServer(config.worker.healthHost, config.worker.healthPort, health, metricsHandler(metrics));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.worker.healthPort;
  const host = config.worker.healthHost.includes(':') ? `[${config.worker.healthHost}]` : config.worker.healthHost;
  return { url: `http://${host}:${port}/health`, stop: () => new Promise<void>((r) => server.close(() => r())) };
}
