import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Db } from '../db/knex.js';
import type { Clock } from '../lib/clock.js';
import type { EngineMonitor } from './engine-monitor.js';
import type { HeartbeatStore } from './heartbeats.js';
import type { GradingJobs } from './jobs.js';

/** Database calls of a health check get this long: a check that hangs is an answer too. */
const DB_DEADLINE_MS = 5000;
/** Heartbeats older than this are of long-gone processes and are not listed. */
const LISTED_MS = 24 * 3600 * 1000;

export interface HealthDeps {
  db: Db;
  queue: Pick<GradingJobs, 'backlog'>;
  heartbeats: HeartbeatStore;
  clock: Clock;
  /** This process's grading workers (0: it grades nothing and needs no engine). */
  workers: number;
  engine?: EngineMonitor;
  engineName: string;
}

export interface Health {
  ok: boolean;
  database: 'up' | 'down';
  engine: { name: string; state: 'up' | 'down' | 'unknown' | 'not used'; error?: string };
  jobs?: { waiting: number; backoff: number; running: number; oldestWaitingSeconds: number | null };
  workers?: Array<{ id: string; engine: string; engineState: string; workers: number; busy: number; lastHeartbeatSecondsAgo: number }>;
}

/**
 * What an operator needs to see a broken host: this process's engine and database, the queue
 * (waiting apart from back-off), and every worker process's last heartbeat. Not ok (503) when
 * this process cannot do its work: no database, or workers without an engine.
 */
export async function checkHealth(d: HealthDeps): Promise<Health> {
  const now = d.clock.now();
  const engine: Health['engine'] =
    d.workers > 0 && d.engine
      ? { name: d.engineName, state: (await d.engine.ready()) ? 'up' : 'down', ...(d.engine.state === 'down' ? { error: d.engine.error } : {}) }
      : { name: d.engineName, state: 'not used' };
  try {
    const [backlog, beats] = await withDeadline(Promise.all([d.queue.backlog(now), d.heartbeats.list(now, LISTED_MS)]), DB_DEADLINE_MS);
    const seconds = (ms: number): number => Math.round(ms / 100) / 10;
    return {
      ok: engine.state !== 'down',
      database: 'up',
      engine,
      jobs: { waiting: backlog.waiting, backoff: backlog.backoff, running: backlog.running, oldestWaitingSeconds: backlog.oldestWaitingMs === null ? null : seconds(backlog.oldestWaitingMs) },
      workers: beats.map((b) => ({ id: b.id, engine: b.engine, engineState: b.engineState, workers: b.workers, busy: b.busy, lastHeartbeatSecondsAgo: seconds(now - b.seenAt) })),
    };
  } catch {
    return { ok: false, database: 'down', engine };
  }
}

/** The /health answer, for express (serve) and for the worker's own listener. */
export function healthHandler(d: HealthDeps): (req: IncomingMessage, res: ServerResponse) => void {
  return (_req, res) => {
    void checkHealth(d).then((h) => {
      res.writeHead(h.ok ? 200 : 503, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
      res.end(JSON.stringify(h));
    });
  };
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** `gofer worker`'s small HTTP listener: GET /health and, when given, GET /metrics; nothing else. */
export async function startHealthServer(host: string, port: number, d: HealthDeps, metrics?: Handler): Promise<Server> {
  const routes = new Map<string, Handler>([['/health', healthHandler(d)], ...(metrics ? [['/metrics', metrics] as const] : [])]);
  const server = createServer((req, res) => {
    const route = req.method === 'GET' ? routes.get((req.url ?? '').split('?')[0]!) : undefined;
    if (route) return route(req, res);
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end(`Nothing here: ${req.method ?? ''} ${req.url ?? ''}\n`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}

function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('deadline')), ms)))]).finally(() => clearTimeout(timer));
}
