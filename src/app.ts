import express, { type Express, type RequestHandler } from 'express';
import type { Config } from './config/schema.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { systemClock, type Clock } from './lib/clock.js';
import { errorMiddleware } from './lib/error-middleware.js';
import type { Logger } from './lib/logger.js';
import { requestContext } from './lib/request-context.js';
import type { HubOAuth } from './submissions/hub-oauth.js';
import { hubSubmitRouter, submissionsApiRouter, type IntakeDeps } from './submissions/routes.js';
import { securityHeaders } from './web/headers.js';
import { learnerPageRouter } from './web/learner-page.js';
import type { PassbackState } from './web/learner-view.js';

export interface AppDeps extends IntakeDeps {
  config: Config;
  log: Logger;
  /** GET /health: engine, database, queue and workers (src/grading/health.ts). */
  health: (req: IncomingMessage, res: ServerResponse) => void;
  /** GET /metrics: the Prometheus text format (src/lib/metrics.ts), exposed like /health. */
  metrics?: (req: IncomingMessage, res: ServerResponse) => void;
  /** The hub service prefix the submit button posts to (e.g. /services/gofer/). */
  prefix: string;
  /** Browser login through the hub, when Gofer runs as a hub service. */
  oauth?: HubOAuth;
  /** More routers (LTI launch and pages), mounted before the catch-all 404. */
  mounts?: Array<[string, RequestHandler]>;
  /** How each submission's grade stands with the platform (when LTI is on), for `{prefix}me`. */
  passbackStates?: (submissionIds: string[]) => Promise<Map<string, PassbackState>>;
  /** Time for the pages (default: the system clock). */
  clock?: Clock;
  /** `GET /` and the docs (src/web/landing.ts). */
  landing?: RequestHandler;
  /** Origins allowed to frame Gofer's pages (the platforms'), besides Gofer itself. */
  frameAncestors?: string[];
}

export const LEGACY_PREFIXES = ['/services/gofer_nb/', '/services/otter_grade/'];

/**
 * Builds the HTTP app from already-built services: no listening, no globals. Body parsers sit on
 * each router, never globally (a global parser would break the LTI launch mounted later).
 */
export function buildApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');
  app.use(requestContext);
  app.use(securityHeaders(deps.frameAncestors ?? []));
  const prefixes = [deps.prefix, ...(deps.config.server.legacyPrefixes ? LEGACY_PREFIXES : [])];
  if (deps.oauth) {
    const oauth = deps.oauth;
    deps = { ...deps, cookieIdentity: (req) => oauth.identity(req), checkXsrf: (req) => oauth.checkXsrf(req), fromHubOrigin: (req) => oauth.fromHub(req) };
    app.use(deps.prefix, oauth.router());
  }
  app.use(deps.prefix, learnerPageRouter({ submissions: deps.submissions, config: deps.config, identity: async (req) => deps.cookieIdentity?.(req), prefix: deps.prefix, hubLogin: deps.oauth !== undefined, now: () => (deps.clock ?? systemClock).now(), ...(deps.passbackStates ? { passbackStates: deps.passbackStates } : {}) }));
  const submit = hubSubmitRouter(deps);
  for (const p of new Set(prefixes)) app.use(p, submit);
  app.use('/api/v1', submissionsApiRouter(deps));
  for (const [path, handler] of deps.mounts ?? []) app.use(path, handler);
  app.get('/health', (req, res) => deps.health(req, res));
  if (deps.metrics) app.get('/metrics', deps.metrics);
  if (deps.landing) app.use(deps.landing);
  app.use((req, res) => {
    res.status(404).type('text/plain').send(`Nothing here: ${req.method} ${req.path}\n`);
  });
  app.use(errorMiddleware(deps.log, deps.config.server.maxNotebookMb));
  return app;
}
