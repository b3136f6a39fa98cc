import type { AddressInfo } from 'node:net';
import express from 'express';
import { systemClock } from '../lib/clock.js';
import { ConfigError } from '../lib/errors.js';
import { silentLogger } from '../lib/logger.js';
import { listRoutes } from '../lib/routes.js';
import { agsRouter } from './ags-routes.js';
import { AgsStore } from './ags-store.js';
import { parseCustom } from './claims.js';
import { PlatformContext } from './context.js';
import { defaultFaults, notFound, serverError } from './faults.js';
import { PlatformKeys } from './keys.js';
import { launchRouter } from './launch-routes.js';
import { coursePage, gradebookPage } from './pages.js';
import { tokenRouter } from './token-route.js';
import { runOf } from './context.js';
import type { DevCourseRun, DevPlatform, DevPlatformOptions } from './types.js';

export type * from './types.js';
export { assignmentComponent, blockKey } from './demo.js';

/**
 * Starts an LTI 1.3 platform that behaves like Open edX (xblock-lti-consumer 11.4), quirks
 * included, so the tool is developed and tested against the platform it will meet rather than
 * a polite one. Everything is in memory; `stop()` forgets it.
 */
export async function startDevPlatform(opts: DevPlatformOptions): Promise<DevPlatform> {
  checkOptions(opts);
  const clock = opts.clock ?? systemClock;
  const log = opts.log ?? silentLogger();
  const host = opts.host ?? '127.0.0.1';
  const app = express();
  app.disable('x-powered-by');
  const server = await new Promise<import('node:http').Server>((resolve, reject) => {
    const s = app.listen(opts.port ?? 0, host, () => resolve(s));
    s.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host}:${port}`;

  // The caller's objects, not copies: changing one mid-run is a course team editing Studio.
  const components = opts.components;
  const users = opts.users;
  const keys = await PlatformKeys.create(components.map((c) => c.clientId));
  const runs = courseRuns(opts);
  const store = new AgsStore({ issuer: url, runs, components, users, clock, log });
  const faults = defaultFaults();
  const ctx = new PlatformContext(url, runs, components, users, keys, store, faults, clock, log);

  app.get('/', (_req, res) => {
    res.type('html').send(coursePage(ctx));
  });
  app.get('/gradebook', (_req, res) => {
    res.type('html').send(gradebookPage(ctx));
  });
  app.use(launchRouter(ctx));
  app.use(tokenRouter(ctx));
  app.use(agsRouter(ctx));
  app.use((_req, res) => notFound(res));
  app.use((err: unknown, req: express.Request, res: express.Response, _next: express.NextFunction) => {
    log.warn('dev-platform: request failed', { path: req.path, error: (err as Error)?.stack ?? String(err) });
    if (!res.headersSent) serverError(res);
  });

  let stopped: Promise<void> | undefined;
  return {
    url,
    issuer: url,
    endpoints: (c) => ctx.endpoints(c),
    faults,
    rotateKey: () => keys.rotate(),
    get tokenRequests() {
      return ctx.tokenRequests;
    },
    set tokenRequests(n: number) {
      ctx.tokenRequests = n;
    },
    get scoresReceived() {
      return store.scoresReceived;
    },
    set scoresReceived(n: number) {
      store.scoresReceived = n;
    },
    lineItems: () => store.all(),
    gradebook: () => store.gradebook(),
    routes: () => listRoutes(app),
    deepLinks: () => [...ctx.deepLinks.values()].map((d) => ({ usageKey: d.usageKey, items: structuredClone(d.items) })),
    launchUrl(username, usageKey, kind = 'resource') {
      const c = ctx.byUsageKey(usageKey);
      if (!c) throw new ConfigError(`no component ${usageKey} on the dev platform`);
      if (!ctx.userByName(username)) throw new ConfigError(`no user ${username} on the dev platform`);
      if (kind === 'deep-link' && !c.deepLinking) throw new ConfigError(`${c.name} does not have deep linking enabled`);
      return ctx.launchStartUrl(username, usageKey, kind);
    },
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return stopped;
    },
  };
}

/** The platform's course runs: the main one first. */
function courseRuns(opts: DevPlatformOptions): DevCourseRun[] {
  return [{ key: opts.courseKey, title: opts.courseTitle }, ...(opts.runs ?? [])];
}

/** Mistakes in the course set-up fail at start, not as a puzzling launch later. */
function checkOptions(opts: DevPlatformOptions): void {
  const unique = (what: string, values: string[]): void => {
    const seen = new Set<string>();
    for (const v of values) {
      if (seen.has(v)) throw new ConfigError(`dev platform: duplicate ${what} ${v}`);
      seen.add(v);
    }
  };
  const runs = courseRuns(opts);
  for (const r of runs) if (!/^course-v1:[^+]+\+[^+]+\+[^+]+$/.test(r.key)) throw new ConfigError(`dev platform: course key ${r.key} is not course-v1:ORG+COURSE+RUN`);
  unique('course key', runs.map((r) => r.key));
  unique('usage key', opts.components.map((c) => c.usageKey));
  unique('config id', opts.components.map((c) => c.configId));
  unique('username', opts.users.map((u) => u.username));
  unique('user sub', opts.users.map((u) => u.sub));
  for (const c of opts.components) {
    if (!runOf(runs, c.usageKey)) throw new ConfigError(`dev platform: usage key ${c.usageKey} is in none of ${runs.map((r) => r.key).join(', ')}`);
    if (!Number.isFinite(c.weight) || c.weight < 0) throw new ConfigError(`dev platform: ${c.usageKey} has weight ${c.weight}`);
    parseCustom(c.custom);
  }
}
