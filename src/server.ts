import type { Server } from 'node:http';
import { hostname } from 'node:os';
import { availableParallelism } from 'node:os';
import { buildApp } from './app.js';
import { ltiCookies, type Config } from './config/schema.js';
import { WalCheckpointer } from './db/checkpointer.js';
import { createDb, migrate, sqliteFile, type Db } from './db/knex.js';
import { AssignmentCatalog } from './grading/catalog.js';
import { ContainerRunner, ENGINE_CALL_MS } from './grading/container-runner.js';
import { createDocker, engineName } from './grading/docker.js';
import { EngineMonitor } from './grading/engine-monitor.js';
import { gradeNotebook } from './grading/grader.js';
import { healthHandler, startHealthServer, type HealthDeps } from './grading/health.js';
import { HeartbeatStore } from './grading/heartbeats.js';
import { JobQueue } from './grading/queue.js';
import { WorkerPool } from './grading/worker.js';
import { systemClock, uuid, type Clock } from './lib/clock.js';
import { ConfigError } from './lib/errors.js';
import { guardUnhandledRejections } from './lib/request-context.js';
import { listRoutes } from './lib/routes.js';
import type { Logger } from './lib/logger.js';
import { ApiTokenStore, Authenticator, HubClient } from './submissions/identity.js';
import { startDevPlatform, type DevPlatform } from './dev-platform/index.js';
import { demoPlatformOptions, devPlatformConfig } from './dev-platform/demo.js';
import { LaunchService } from './lti/launch.js';
import { KnexLtiPlugin } from './lti/knex-plugin.js';
import { ltiBaseUrl, ltiEncryptionKey, registerPlatforms, setupLti } from './lti/provider.js';
import { LtiStore } from './lti/store.js';
import { AgsClient, LtijsToolKeys } from './passback/ags-client.js';
import { Dispatcher } from './passback/dispatcher.js';
import { PassbackOutbox, passbackHook } from './passback/outbox.js';
import { passbackNotice } from './passback/notice.js';
import { policyLookup } from './passback/policy.js';
import { Signer } from './submissions/identity.js';
import { cookieSecret, HubOAuth, hubOAuthSettings } from './submissions/hub-oauth.js';
import { BrowserSessions } from './web/browser-sessions.js';
import { origins, partitionCrossSiteCookies } from './web/headers.js';
import { linkRouter, ltiPagesRouter } from './web/lti-pages.js';
import { LtiPageSessions } from './web/lti-session.js';
import type { RequestHandler } from 'express';
import { ExaminerPool } from './submissions/examine.js';
import { Intake } from './submissions/intake.js';
import { SubmissionStore } from './submissions/store.js';

export interface RunOptions {
  config: Config;
  log: Logger;
  env?: NodeJS.ProcessEnv;
  clock?: Clock;
  /** false: workers only (`gofer worker`). */
  http: boolean;
  workers?: number;
}

export interface Running {
  url?: string;
  /** `gofer worker`'s /health, when worker.healthPort is set. */
  healthUrl?: string;
  /** The dev platform started beside Gofer (configuration `devPlatform.enabled`). */
  devPlatform?: DevPlatform;
  stop(): Promise<void>;
  /** Stop waiting for running grading jobs: give them back at once. */
  hurry(): void;
}

/** Where the hub tells a managed service to listen and what prefix it is reached at. */
export function hubSettings(config: Config, env: NodeJS.ProcessEnv): { host: string; port: number; prefix: string; apiUrl?: string } {
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

/**
 * The composition root of `gofer serve` and `gofer worker`: builds every service once, starts
 * the HTTP server and the grading workers, and stops them in order on SIGTERM.
 */
export async function run(opts: RunOptions): Promise<Running> {
  const { config, log } = opts;
  const env = opts.env ?? process.env;
  const clock = opts.clock ?? systemClock;
  const sqlite = config.database.client === 'sqlite';
  const db: Db = createDb(config, env, { backgroundCheckpoints: sqlite });
  // everything started so far, stopped in reverse order on failure or shutdown
  const started: Array<() => Promise<void>> = [() => db.destroy()];
  if (sqlite) {
    const checkpointer = new WalCheckpointer(sqliteFile(config), log);
    started.push(() => checkpointer.stop());
  }
  const unwind = async (): Promise<void> => {
    for (const stop of started.reverse()) await stop().catch((err: Error) => log.warn('while stopping', { error: err.message }));
  };
  try {
    return await start(opts, db, env, clock, started, unwind);
  } catch (err) {
    await unwind();
    throw err;
  }
}

async function start(
  opts: RunOptions,
  db: Db,
  env: NodeJS.ProcessEnv,
  clock: Clock,
  started: Array<() => Promise<void>>,
  unwind: () => Promise<void>,
): Promise<Running> {
  const { config, log } = opts;
  const applied = await migrate(db);
  if (applied.length) log.info('database migrated', { applied });

  const docker = createDocker(config);
  const runner = new ContainerRunner(docker, log);
  const catalog = await AssignmentCatalog.load(config);
  const workers = opts.workers ?? config.queue.workers ?? availableParallelism();
  const name = `${hostname()}/${process.pid}`;
  let engine = engineName(config, env);
  let engineCpus = 0;
  if (workers > 0) {
    for (const image of catalog.images()) await runner.checkReady(image);
    await runner.removeLeftovers();
    // the engine's own id tells engines apart across hosts (the same socket path names a different engine on each)
    const info = (await Promise.race([docker.info(), new Promise((_, reject) => setTimeout(() => reject(new Error('no answer')), ENGINE_CALL_MS).unref())])) as { ID?: string; NCPU?: number };
    engine = `${engine} ${String(info.ID ?? '').slice(0, 14)}`.trim();
    engineCpus = Number(info.NCPU ?? 0);
  }
  const monitor = workers > 0 ? new EngineMonitor(runner, { images: catalog.images(), log, cacheMs: config.queue.engineProbeMs, engine }) : undefined;
  const heartbeats = new HeartbeatStore(db);
  const submissions = new SubmissionStore(db);
  // With LTI, a graded result and its passback row are stored in one transaction.
  const lti = await ltiEnabled(config, db);
  const outbox = lti ? new PassbackOutbox(db) : undefined;
  const policy = policyLookup(config);
  let dispatcher: Dispatcher | undefined;
  const queue = new JobQueue(db, {
    retryDelayMs: config.queue.retryDelaySeconds * 1000,
    maxRunningPerLearner: config.queue.maxRunningPerLearner,
    log,
    ...(outbox ? { onRecorded: passbackHook(outbox, policy, { onEnqueued: () => dispatcher?.notify() }) } : {}),
  });
  const pool = new WorkerPool({
    queue,
    submissions,
    clock,
    log,
    name,
    size: workers,
    leaseMs: config.queue.leaseSeconds * 1000,
    pollMs: config.queue.pollMs,
    ...(monitor ? { engine: monitor } : {}),
    engineName: engine,
    heartbeats,
    heartbeatMs: config.queue.heartbeatSeconds * 1000,
    grade: (submission, notebook, signal) => {
      const g = catalog.get(submission.course, submission.assignment);
      return gradeNotebook(runner, { notebook, examined: true, image: g.image, policy: g.policy, limits: g.limits, tests: g.tests, supportFiles: g.supportFiles, jobId: submission.id, signal });
    },
  });
  pool.start();
  started.push(() => pool.stop(config.queue.shutdownGraceSeconds * 1000));
  if (workers > 0) await warnIfOversubscribed(heartbeats, { engine, engineCpus, clock, log, heartbeatMs: config.queue.heartbeatSeconds * 1000, name, workers });
  const health: HealthDeps = { db, queue, heartbeats, clock, workers, engineName: engine, ...(monitor ? { engine: monitor } : {}) };

  let url: string | undefined;
  let healthUrl: string | undefined;
  let devPlatformRef: DevPlatform | undefined;
  if (opts.http) {
    const unguard = guardUnhandledRejections(log);
    started.push(async () => unguard());
    const hub = hubSettings(config, env);
    const hubClient = hub.apiUrl ? new HubClient(hub.apiUrl, { cacheMs: config.hub.cacheSeconds * 1000, clock, requiredScopes: hubScopes(env) }) : undefined;
    const auth = new Authenticator(hubClient, new ApiTokenStore(db, clock));
    const oauthSettings = hubOAuthSettings(env, hub.prefix);
    const sessions = new BrowserSessions(db);
    const oauth =
      hubClient && oauthSettings
        ? new HubOAuth(oauthSettings, hubClient, cookieSecret(config.server.secret, env, config.dataDir), clock, hub.prefix, sessions)
        : undefined;
    const examiners = new ExaminerPool();
    started.push(() => examiners.close());
    const intake = new Intake({ config, submissions, examiners, clock, ids: uuid, log, onQueued: () => pool.notify() });
    const mounts: Array<[string, RequestHandler]> = [];
    const frameAncestors = origins(config.lti.frameAncestors);
    let ltiApp: RequestHandler | undefined;
    let devPlatform: DevPlatform | undefined;
    if (outbox) {
      const toolUrl = ltiBaseUrl(config, hub);
      if (!config.lti.url && hub.port === 0) throw new ConfigError('LTI needs a fixed server.port (or lti.url): platforms must know where Gofer is.');
      const store = new LtiStore(db);
      const signer = new Signer(cookieSecret(config.server.secret, env, config.dataDir));
      const pageSessions = new LtiPageSessions({ sessions, cookies: ltiCookies(config.lti), clock });
      const ags = new AgsClient({
        keys: new LtijsToolKeys(new KnexLtiPlugin(db, clock, log), ltiEncryptionKey(config, env)),
        clock,
        log,
        requestTimeoutMs: config.passback.requestTimeoutSeconds * 1000,
      });
      const d = new Dispatcher({
        outbox,
        ags,
        lti: store,
        policy,
        clock,
        log,
        name: `${hostname()}/${process.pid}`,
        concurrency: config.passback.concurrency,
        pollMs: config.passback.pollMs,
        maxAttempts: config.passback.maxAttempts,
        retryDelayMs: config.passback.retryDelaySeconds * 1000,
        // a lease outlives the few requests one send makes, each with its own timeout
        leaseMs: Math.max(120_000, 12 * config.passback.requestTimeoutSeconds * 1000),
      });
      dispatcher = d;
      d.start();
      started.push(() => d.stop(config.queue.shutdownGraceSeconds * 1000));
      const wake = async (hubUser: string): Promise<void> => {
        await d.wake(hubUser);
      };
      const launches = new LaunchService({
        config,
        store,
        clock,
        onIdentity: wake,
        onBinding: async (course, assignment) => {
          await d.wakeAssignment(course, assignment);
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
        assignmentsForDeepLinking: () => config.courses.flatMap((c) => c.assignments.map((a) => ({ id: a.id, title: `${c.id}: ${a.id}` }))),
      });
      const platforms = [...config.lti.platforms];
      if (config.devPlatform.enabled) {
        const options = demoPlatformOptions(config, toolUrl, log);
        const dev = await startDevPlatform(options);
        devPlatform = dev;
        started.push(() => dev.stop());
        platforms.push(devPlatformConfig(dev, options.components));
        log.info(`dev platform: open ${dev.url}/ to launch as a learner or an instructor`);
      }
      await registerPlatforms(mount.provider, platforms, log);
      frameAncestors.push(...origins(platforms.map((p) => p.issuer)));
      if (ltiCookies(config.lti).partitioned) mounts.push(['/lti', partitionCrossSiteCookies()]);
      ltiApp = mount.app;
      mounts.push(['/lti', mount.app]);
      mounts.push([
        '/app',
        ltiPagesRouter({
          config,
          store,
          submissions,
          db,
          outbox,
          notifyPassback: () => d.notify(),
          signer,
          pageSessions,
          clock,
          prefix: hub.prefix,
          passbackStates: async (ids) =>
            new Map([...(await outbox.bySubmission(ids))].map(([id, v]) => [id, { status: v.status, detail: passbackNotice(v, policy(v.course, v.assignment)).sentences.join(' ') || null }])),
          resend: async (submissionId) => {
            const row = (await outbox.bySubmission([submissionId])).get(submissionId);
            const n = row ? await outbox.requeue([row.id], clock.now()) : 0;
            d.notify();
            return n > 0;
          },
          onLinked: wake,
          wakeGrading: () => pool.notify(),
          submit: (who, file, target) => intake.submit(who, { kind: 'file', bytes: file }, target),
          ...(oauth ? { hubIdentity: (req: import('express').Request) => oauth.identity(req) } : {}),
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
          ...(oauth
            ? {
                hubIdentity: (req: import('express').Request) => oauth.identity(req),
                xsrfToken: (req: import('express').Request) => oauth.xsrfToken(req),
                checkXsrf: (req: import('express').Request) => oauth.checkXsrf(req),
              }
            : {}),
        }),
      ]);
    }
    devPlatformRef = devPlatform;
    const app = buildApp({ config, log, prefix: hub.prefix, intake, auth, submissions, ...(outbox ? { passbacks: outbox } : {}), mounts, frameAncestors, health: healthHandler(health), ...(oauth ? { oauth } : {}) });
    const server = await new Promise<Server>((resolve, reject) => {
      const s = app.listen(hub.port, hub.host, () => resolve(s));
      s.once('error', reject);
    });
    started.push(async () => {
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeIdleConnections();
      await closed;
    });
    const addr = server.address();
    const port = typeof addr === 'object' && addr ? addr.port : hub.port;
    url = `http://${hub.host.includes(':') ? `[${hub.host}]` : hub.host}:${port}`;
    log.info(`Gofer listening on ${url}${hub.prefix}`, { workers, hub: hub.apiUrl ?? 'none', ...(workers > 0 ? { engine } : {}), database: describeDb(config) });
    if (outbox) {
      const base = ltiBaseUrl(config, hub);
      log.info(`LTI on: login ${base}/lti/login   launch ${base}/lti   keyset ${base}/lti/keys`);
    } else {
      log.warn('LTI off: no platform is configured (lti.platforms) or added (gofer platform add), lti.url is unset and the dev platform is off; /lti answers 404');
    }
    log.debug('routes', { gofer: [...listRoutes(app), ...(ltiApp ? listRoutes(ltiApp, '/lti') : [])], ...(devPlatform ? { devPlatform: { url: devPlatform.url, routes: devPlatform.routes() } } : {}) });
  } else {
    if (config.worker.healthPort !== undefined) {
      const server = await startHealthServer(config.worker.healthHost, config.worker.healthPort, health);
      started.push(() => new Promise<void>((r) => server.close(() => r())));
      const addr = server.address();
      const port = typeof addr === 'object' && addr ? addr.port : config.worker.healthPort;
      healthUrl = `http://${config.worker.healthHost.includes(':') ? `[${config.worker.healthHost}]` : config.worker.healthHost}:${port}/health`;
    }
    log.info('Gofer worker started', { workers, engine, database: describeDb(config), ...(healthUrl ? { health: healthUrl } : {}) });
  }

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      log.info('stopping: no new work; finishing or giving back running jobs', { graceSeconds: config.queue.shutdownGraceSeconds });
      await unwind();
      log.info('stopped');
    })());
  // a second signal: do not wait for running jobs, give them back now
  const hurry = (): void => pool.abortRunning();
  return { ...(url ? { url } : {}), ...(healthUrl ? { healthUrl } : {}), ...(devPlatformRef ? { devPlatform: devPlatformRef } : {}), stop, hurry };
}

/** Which database, for the start line: never its password. */
function describeDb(config: Config): string {
  if (config.database.client === 'sqlite') return `sqlite ${sqliteFile(config)}`;
  const raw = config.database.url ?? process.env.DATABASE_URL ?? '';
  try {
    const u = new URL(raw);
    return `pg ${u.hostname}:${u.port || 5432}${u.pathname}`;
  } catch {
    return 'pg';
  }
}

/**
 * Worker processes sharing one engine each default to one worker per core: three of them on a
 * 2-core engine ran 6 containers at once, each notebook 3.5 times slower. Say so at start.
 */
async function warnIfOversubscribed(
  heartbeats: HeartbeatStore,
  o: { engine: string; engineCpus: number; clock: Clock; log: Logger; heartbeatMs: number; name: string; workers: number },
): Promise<void> {
  if (!o.engineCpus) return;
  const now = o.clock.now();
  const others = (await heartbeats.list(now, 3 * o.heartbeatMs).catch(() => [])).filter((h) => h.engine === o.engine && h.id !== o.name);
  const total = o.workers + others.reduce((n, h) => n + h.workers, 0);
  if (total > o.engineCpus) {
    o.log.warn('the worker processes on this Docker engine oversubscribe it: grading will be slower, not faster (see docs/scaling.md)', {
      engine: o.engine,
      cpus: o.engineCpus,
      workers: total,
      processes: others.length + 1,
    });
  }
}

/**
 * LTI is on when platforms are configured or were added with `gofer platform add`, Gofer's public
 * URL is set, or the dev platform runs beside it.
 */
export async function ltiEnabled(config: Config, db: Db): Promise<boolean> {
  if (config.lti.platforms.length > 0 || config.lti.url || config.devPlatform.enabled) return true;
  return Boolean(await db('lti_platforms').first('id'));
}

/** The scopes a hub token must carry to submit to this service (JupyterHub 2+ tells managed services). */
function hubScopes(env: NodeJS.ProcessEnv): string[] {
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
