import type { Environment } from './config/load.js';
import { ltiConfigured, type Config, type PlatformConfig } from './config/schema.js';
import { WalCheckpointer } from './db/checkpointer.js';
import { createDb, migrate, sqliteFile, type Db } from './db/knex.js';
import { systemClock, type Clock } from './lib/clock.js';
import { guardUnhandledRejections } from './lib/request-context.js';
import type { Logger } from './lib/logger.js';
import { Metrics } from './lib/metrics.js';
import type { RouteEntry } from './lib/routes.js';
import { PassbackOutbox } from './passback/outbox.js';
import { KnexLtiPlugin } from './lti/knex-plugin.js';
import { policyLookup } from './passback/policy.js';
import { createGrading } from './root/grading.js';
import { createHealthHttp, createHttp } from './root/http.js';
import { SubmissionStore } from './submissions/store.js';

export { hubSettings } from './root/http.js';

export interface RunOptions {
  config: Config;
  log: Logger;
  /** The environment, read once (config/load.ts readEnvironment). */
  env: Environment;
  clock?: Clock;
  /** false: workers only (`gofer worker`). */
  http: boolean;
  workers?: number;
  /** Platforms besides the configured ones: the dev platform the CLI started beside Gofer. */
  platforms?: PlatformConfig[];
  /** That dev platform's routes, for the route listing at start. */
  devPlatform?: { url: string; routes(): RouteEntry[] };
}

export interface Running {
  url?: string;
  /** `gofer worker`'s /health, when worker.healthPort is set. */
  healthUrl?: string;
  stop(): Promise<void>;
  /** Stop waiting for running grading jobs: give them back at once. */
  hurry(): void;
}

/**
 * Runs `gofer serve` and `gofer worker` from the factories of the composition root (src/root/):
 * the database, grading, and for `serve` the HTTP side (with LTI and passback when on). Each
 * part returns its `stop`; they stop in reverse order, on failure at start or at shutdown.
 */
export async function run(opts: RunOptions): Promise<Running> {
  const { config, log, env } = opts;
  const clock = opts.clock ?? systemClock;
  const sqlite = config.database.client === 'sqlite';
  const db: Db = createDb(config, env, { backgroundCheckpoints: sqlite });
  const started: Array<() => Promise<void>> = [() => db.destroy()];
  if (sqlite) {
    const checkpointer = new WalCheckpointer(sqliteFile(config), log);
    started.push(() => checkpointer.stop());
  }
  const unwind = async (): Promise<void> => {
    for (const stop of started.reverse()) await stop().catch((err: Error) => log.warn('while stopping', { error: err.message }));
  };
  try {
    const applied = await migrate(db);
    if (applied.length) log.info('database migrated', { applied });
    const submissions = new SubmissionStore(db);
    // With LTI, a graded result and its passback row are stored in one transaction.
    const outbox = (await ltiEnabled(config, db, clock, log, opts.platforms)) ? new PassbackOutbox(db) : undefined;
    const policy = policyLookup(config);
    const base = { config, db, env, clock, log, metrics: new Metrics() };
    const grading = await createGrading({
      ...base,
      ...(opts.workers !== undefined ? { workers: opts.workers } : {}),
      ...(outbox ? { passback: { outbox, policy } } : {}),
    });
    started.push(grading.stop);
    let url: string | undefined;
    let healthUrl: string | undefined;
    if (opts.http) {
      const unguard = guardUnhandledRejections(log);
      started.push(async () => unguard());
      const http = await createHttp({
        ...base,
        submissions,
        health: grading.health,
        wakeGrading: () => grading.pool.notify(),
        outbox,
        policy,
        ...(opts.platforms ? { platforms: opts.platforms } : {}),
        ...(opts.devPlatform ? { devPlatform: opts.devPlatform } : {}),
        workers: grading.workers,
        engine: grading.engine,
        describeDb: describeDb(config, env),
      });
      started.push(http.stop);
      url = http.url;
    } else {
      const health = await createHealthHttp(config, grading.health, base.metrics);
      if (health) started.push(health.stop);
      healthUrl = health?.url;
      log.info('Gofer worker started', { workers: grading.workers, engine: grading.engine, database: describeDb(config, env), ...(healthUrl ? { health: healthUrl } : {}) });
    }
    let stopping: Promise<void> | undefined;
    const stop = (): Promise<void> =>
      (stopping ??= (async () => {
        log.info('stopping: no new work; finishing or giving back running jobs', { graceSeconds: config.queue.shutdownGraceSeconds });
        await unwind();
        log.info('stopped');
      })());
    // a second signal: do not wait for running jobs, give them back now
    const hurry = (): void => grading.pool.abortRunning();
    return { ...(url ? { url } : {}), ...(healthUrl ? { healthUrl } : {}), stop, hurry };
  } catch (err) {
    await unwind();
    throw err;
  }
}

/** Which database, for the start line: never its password. */
function describeDb(config: Config, env: Environment): string {
  if (config.database.client === 'sqlite') return `sqlite ${sqliteFile(config)}`;
  const raw = config.database.url ?? env.DATABASE_URL ?? '';
  try {
    const u = new URL(raw);
    return `pg ${u.hostname}:${u.port || 5432}${u.pathname}`;
  } catch {
    return 'pg';
  }
}

/**
 * LTI is on when platforms are configured or were added with `gofer platform add`, Gofer's public
 * URL is set, or a dev platform runs beside it.
 */
export async function ltiEnabled(config: Config, db: Db, clock: Clock, log: Logger, extra: PlatformConfig[] = []): Promise<boolean> {
  if (ltiConfigured(config) || extra.length > 0) return true;
  return new KnexLtiPlugin(db, clock, log).hasPlatform();
}
