import type { Environment } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { Db } from '../db/knex.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { Metrics } from '../lib/metrics.js';

/** What every factory of the composition root is given. */
export interface RootDeps {
  config: Config;
  db: Db;
  /** The environment, read once (config/load.ts readEnvironment). */
  env: Environment;
  clock: Clock;
  log: Logger;
  /** This process's metrics (GET /metrics); each factory instruments its parts and adds its scrape-time sources. */
  metrics: Metrics;
}
