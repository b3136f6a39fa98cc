/**
 * Passback throughput against the dev platform (edX-like), and how many access tokens it costs.
 *
 *   npm run bench:passback -- [--learners 1000] [--assignments 5] [--concurrency 8]
 *                             [--latency 0] [--clients shared|per-component] [--max-seconds 120]
 *
 * Set-up (not timed): a fresh SQLite database; a tool key registered the way ltijs's
 * registerPlatform stores it, its keyset served on 127.0.0.1 (the platform fetches it on every
 * token request); the dev platform with one declarative component per assignment, sharing one
 * client id (an edX "passport") unless `--clients per-component`; an identity per learner and a
 * binding per assignment; then learners × assignments graded submissions whose passbacks are
 * queued through PassbackOutbox.enqueue.
 *
 * Timed: a Dispatcher (config-default options except `--concurrency`) drains the outbox. The
 * platform runs in a worker thread of this process, as edX runs on another machine: its work
 * does not compete with Gofer's event loop (on one thread the pair tops out near 280 scores/s
 * here, half of it the platform's). `--latency` adds that many ms before each platform answer.
 *
 * Reported: scores per second, token requests (platform's count and the client's), AGS refusals,
 * and a check that the platform holds exactly one score per (learner, assignment).
 * Targets: >= 200 scores/s; one token request per registration and scope set per token lifetime.
 * The exit code is 0 when the bench ran (whether or not targets are met), 1 on an error.
 */
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { exportJWK } from 'jose';
import { passbackSchema } from '../src/config/schema.js';
import { createDb, migrate } from '../src/db/knex.js';
import { assignmentComponent, startDevPlatform, type DevComponent, type DevUser, type LineItem } from '../src/dev-platform/index.js';
import { systemClock } from '../src/lib/clock.js';
import { silentLogger } from '../src/lib/logger.js';
import { KnexLtiPlugin } from '../src/lti/knex-plugin.js';
import { LtiStore } from '../src/lti/store.js';
import { AGS_SCOPE, AgsClient } from '../src/passback/ags-client.js';
import { LtijsToolKeys } from '../src/lti/tool-keys.js';
import { Dispatcher } from '../src/passback/dispatcher.js';
import { PassbackOutbox } from '../src/passback/outbox.js';

const TARGET_PER_SECOND = 200;
const ENC = randomBytes(24).toString('hex');
const COURSE_KEY = 'course-v1:GoferX+BENCH+2026';

const { values } = parseArgs({
  options: {
    learners: { type: 'string', default: '1000' },
    assignments: { type: 'string', default: '5' },
    concurrency: { type: 'string' },
    latency: { type: 'string', default: '0' },
    clients: { type: 'string', default: 'shared' },
    'max-seconds': { type: 'string', default: '120' },
  },
});
const LEARNERS = Number(values.learners);
const ASSIGNMENTS = Number(values.assignments);
const LATENCY = Number(values.latency);
const MAX_SECONDS = Number(values['max-seconds']);
const PER_COMPONENT = values.clients === 'per-component';
const defaults = passbackSchema.parse({});
const CONCURRENCY = values.concurrency ? Number(values.concurrency) : defaults.concurrency;
const N = LEARNERS * ASSIGNMENTS;

async function main(): Promise<void> {
  const log = silentLogger();
  const clock = systemClock;
  const dir = mkdtempSync(path.join(tmpdir(), 'gofer-bench-passback-'));
  const db = createDb({ database: { client: 'sqlite', filename: path.join(dir, 'gofer.sqlite'), pool: 1 }, dataDir: dir });
  await migrate(db);

  // the tool keys, as ltijs generates them (one per registration, PKCS#1 PEM), and their keyset
  const clientIds = PER_COMPONENT ? Array.from({ length: ASSIGNMENTS }, (_, i) => `gofer-lab${String(i + 1).padStart(2, '0')}`) : ['gofer-passport'];
  const toolKeys = new Map<string, { kid: string; pem: string }>();
  const jwkList = [];
  for (const clientId of clientIds) {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const kid = randomBytes(16).toString('hex');
    toolKeys.set(clientId, { kid, pem: privateKey.export({ type: 'pkcs1', format: 'pem' }).toString() });
    jwkList.push({ ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' });
  }
  const jwks = JSON.stringify({ keys: jwkList });
  const keyset = createServer((_req, res) => {
    res.setHeader('Content-Type', 'application/json');
    res.end(jwks);
  });
  await new Promise<void>((r) => keyset.listen(0, '127.0.0.1', () => r()));
  const keysetUrl = `http://127.0.0.1:${(keyset.address() as AddressInfo).port}/lti/keys`;

  const names = Array.from({ length: ASSIGNMENTS }, (_, i) => `lab${String(i + 1).padStart(2, '0')}`);
  const tool = { loginUrl: 'http://127.0.0.1:9/lti/login', launchUrl: 'http://127.0.0.1:9/lti', keysetUrl };
  const components: DevComponent[] = names.map((a) => assignmentComponent({ courseRun: 'BENCH', assignment: a, clientId: PER_COMPONENT ? `gofer-${a}` : 'gofer-passport', tool }));
  const users: DevUser[] = Array.from({ length: LEARNERS }, (_, i) => ({ username: `u${i}`, sub: `anon-${i}-${randomBytes(6).toString('hex')}`, name: `U ${i}`, email: `u${i}@example.org`, role: 'learner' }));
  const platform = await RemotePlatform.start({ components, users, latencyMs: LATENCY });

  // registrations: one per client id, as `gofer platform add` would make them
  const plugin = new KnexLtiPlugin(db, clock, log);
  const registered = new Set<string>();
  for (const c of components) {
    if (registered.has(c.clientId)) continue;
    registered.add(c.clientId);
    const ep = platform.endpoints(c);
    const where = { platformUrl: platform.issuer, clientId: c.clientId };
    const { kid, pem } = toolKeys.get(c.clientId)!;
    await plugin.Replace(false, 'platform', where, { ...where, platformName: 'edX (dev)', authEndpoint: ep.authUrl, accesstokenEndpoint: ep.tokenUrl, kid, authConfig: { method: 'JWK_SET', key: ep.keysetUrl } });
    await plugin.Replace(ENC, 'privatekey', where, { key: pem, kid }, { kid, ...where });
  }

  const lti = new LtiStore(db);
  const now = clock.now();
  for (const u of users) {
    await lti.saveIdentity({ issuer: platform.issuer, sub: u.sub, clientId: components[0]!.clientId, deploymentId: '1', name: u.name, email: null, roles: [], hubUser: u.username }, now);
  }
  const items = await platform.lineItems();
  for (const c of components) {
    const binding = await lti.saveBinding(
      {
        issuer: platform.issuer,
        clientId: c.clientId,
        deploymentId: '1',
        contextId: COURSE_KEY,
        resourceLinkId: c.usageKey,
        course: 'bench',
        assignment: c.custom[0]!.split('=')[1]!,
        lineItemUrl: items.find((i) => i.configId === c.configId)!.id,
        lineItemsUrl: `${platform.issuer}/api/lti_consumer/v1/lti/${c.configId}/lti-ags`,
        scopes: [AGS_SCOPE.lineitemReadonly, AGS_SCOPE.resultReadonly, AGS_SCOPE.score],
        endAt: null,
        scoreMaximum: null,
      },
      now,
    );
    for (const u of users) await lti.recordLaunch({ issuer: platform.issuer, sub: u.sub, bindingId: binding.id }, now);
  }

  // N graded submissions and their passbacks (what JobQueue.complete + passbackHook leave behind)
  const outbox = new PassbackOutbox(db);
  const setupStart = performance.now();
  let seq = 0;
  for (let i = 0; i < LEARNERS; i += 100) {
    await db.transaction(async (trx) => {
      for (let u = i; u < Math.min(LEARNERS, i + 100); u++) {
        for (const a of names) {
          const id = randomUUID();
          const t = now + seq++;
          await trx('submissions').insert({ id, owner: `u${u}`, course: 'bench', assignment: a, section: null, received_at: t, sha256: 'a'.repeat(64), status: 'graded', score: 0.8, graded_at: t });
          const [job] = await trx('grading_jobs').insert({ submission_id: id, status: 'done', attempts: 1, max_attempts: 3, run_at: t, created_at: t, updated_at: t }).returning('id');
          const [res] = await trx('results')
            .insert({ submission_id: id, job_id: typeof job === 'object' ? job.id : job, status: 'graded', score: 0.8, points: 8, max_points: 10, duration_ms: 1, created_at: t })
            .returning('id');
          const score = Math.round(((u * 7 + seq) % 100) + 1) / 100;
          await outbox.enqueue(trx, { submissionId: id, resultId: Number(typeof res === 'object' ? res.id : res), owner: `u${u}`, course: 'bench', assignment: a, score, gradedAt: t, receivedAt: t, policy: { select: 'latest', late: 'accept' } }, t);
        }
      }
    });
  }
  const setupSeconds = (performance.now() - setupStart) / 1000;

  const ags = new AgsClient({ keys: new LtijsToolKeys(plugin, ENC), clock, requestTimeoutMs: defaults.requestTimeoutSeconds * 1000, log });
  const dispatcher = new Dispatcher({
    outbox,
    ags,
    lti,
    policy: () => ({ points: 10, select: 'latest', late: 'accept', label: 'bench' }),
    clock,
    log,
    name: `bench/${process.pid}`,
    concurrency: CONCURRENCY,
    pollMs: defaults.pollMs,
    maxAttempts: defaults.maxAttempts,
    retryDelayMs: defaults.retryDelaySeconds * 1000,
  });

  console.log(`passback bench: ${N} scores (${LEARNERS} learners × ${ASSIGNMENTS} assignments), concurrency ${CONCURRENCY}, platform latency ${LATENCY} ms, ${registered.size} registration(s); queued in ${setupSeconds.toFixed(1)} s`);
  const started = performance.now();
  dispatcher.start();
  let sent = 0;
  let timedOut = false;
  let lastReport = started;
  // completion is watched on the platform's counter (in memory): polling the outbox would
  // compete with the dispatcher for SQLite's one connection; the outbox is checked at the end
  for (;;) {
    await new Promise((r) => setTimeout(r, 20));
    sent = (await platform.stats()).scoresReceived;
    if (sent >= N) break;
    if (performance.now() - lastReport > 2000) {
      lastReport = performance.now();
      console.log(`  … ${sent} sent after ${((lastReport - started) / 1000).toFixed(1)} s`);
    }
    if (performance.now() - started > MAX_SECONDS * 1000) {
      timedOut = true;
      break;
    }
  }
  const seconds = (performance.now() - started) / 1000;
  await dispatcher.stop(5000);
  const counts = await outbox.counts();
  sent = counts.sent ?? 0;

  // the platform holds exactly one score per (learner, assignment)
  const { scoresReceived, tokenRequests } = await platform.stats();
  const stored = (await platform.lineItems()).reduce((n, i) => n + i.scores.length, 0);
  const perSecond = sent / seconds;
  const tokenBudget = registered.size; // one scope set (score), one token lifetime (the run is far shorter than an hour)

  console.log(`  sent ${sent} of ${N} in ${seconds.toFixed(2)} s: ${perSecond.toFixed(0)} scores/s (target >= ${TARGET_PER_SECOND})`);
  console.log(`  outbox: ${JSON.stringify(counts)}`);
  console.log(`  platform: ${scoresReceived} scores accepted, ${stored} stored, ${tokenRequests} token requests (target ${tokenBudget}: one per registration and scope set per token lifetime)`);
  console.log(`  client: ${ags.stats.tokenRequests} token requests, ${ags.stats.scorePosts} score POSTs, ${ags.stats.refused} refused (401/403)`);
  const ok = !timedOut && sent === N && stored === N && scoresReceived === N;
  console.log(
    JSON.stringify({
      bench: 'passback',
      scores: N,
      learners: LEARNERS,
      assignments: ASSIGNMENTS,
      concurrency: CONCURRENCY,
      latencyMs: LATENCY,
      registrations: registered.size,
      sent,
      seconds: Number(seconds.toFixed(3)),
      scoresPerSecond: Math.round(perSecond),
      tokenRequests: tokenRequests,
      clientTokenRequests: ags.stats.tokenRequests,
      refused: ags.stats.refused,
      scoresStored: stored,
      allDelivered: ok,
      targets: { scoresPerSecond: perSecond >= TARGET_PER_SECOND, tokenRequests: tokenRequests <= tokenBudget },
    }),
  );

  await platform.stop();
  await new Promise<void>((r) => keyset.close(() => r()));
  await db.destroy();
  rmSync(dir, { recursive: true, force: true });
}

/** The dev platform in a worker thread; asked for its counters by message. */
interface PlatformSetup {
  components: DevComponent[];
  users: DevUser[];
  latencyMs: number;
}
type Reply = { issuer: string; endpoints: Array<{ authUrl: string; tokenUrl: string; keysetUrl: string }> } | { scoresReceived: number; tokenRequests: number } | { lineItems: LineItem[] };

class RemotePlatform {
  private seq = 0;
  private readonly waiting = new Map<number, (r: Reply) => void>();

  private constructor(
    private readonly worker: Worker,
    readonly issuer: string,
    private readonly eps: Array<{ authUrl: string; tokenUrl: string; keysetUrl: string }>,
    private readonly components: DevComponent[],
  ) {
    worker.on('message', (m: { id: number; reply: Reply }) => {
      this.waiting.get(m.id)?.(m.reply);
      this.waiting.delete(m.id);
    });
  }

  static async start(setup: PlatformSetup): Promise<RemotePlatform> {
    const worker = new Worker(new URL(import.meta.url), { workerData: setup });
    const ready = await new Promise<{ issuer: string; endpoints: Array<{ authUrl: string; tokenUrl: string; keysetUrl: string }> }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    return new RemotePlatform(worker, ready.issuer, ready.endpoints, setup.components);
  }

  endpoints(c: DevComponent): { authUrl: string; tokenUrl: string; keysetUrl: string } {
    return this.eps[this.components.findIndex((x) => x.configId === c.configId)]!;
  }

  private ask<T extends Reply>(what: 'stats' | 'lineItems' | 'stop'): Promise<T> {
    const id = ++this.seq;
    return new Promise<T>((resolve) => {
      this.waiting.set(id, resolve as (r: Reply) => void);
      this.worker.postMessage({ id, what });
    });
  }

  stats(): Promise<{ scoresReceived: number; tokenRequests: number }> {
    return this.ask('stats');
  }

  async lineItems(): Promise<LineItem[]> {
    return (await this.ask<{ lineItems: LineItem[] }>('lineItems')).lineItems;
  }

  async stop(): Promise<void> {
    await this.ask('stop');
    await this.worker.terminate();
  }
}

async function platformThread(): Promise<void> {
  const setup = workerData as PlatformSetup;
  const platform = await startDevPlatform({ courseKey: COURSE_KEY, courseTitle: 'Bench', components: setup.components, users: setup.users });
  platform.faults.latencyMs = setup.latencyMs;
  parentPort!.on('message', (m: { id: number; what: 'stats' | 'lineItems' | 'stop' }) => {
    if (m.what === 'stats') parentPort!.postMessage({ id: m.id, reply: { scoresReceived: platform.scoresReceived, tokenRequests: platform.tokenRequests } });
    else if (m.what === 'lineItems') parentPort!.postMessage({ id: m.id, reply: { lineItems: platform.lineItems() } });
    else void platform.stop().then(() => parentPort!.postMessage({ id: m.id, reply: {} }));
  });
  parentPort!.postMessage({ issuer: platform.issuer, endpoints: setup.components.map((c) => platform.endpoints(c)) });
}

if (!isMainThread) {
  void platformThread();
} else main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error((err as Error)?.stack ?? String(err));
    process.exit(1);
  },
);
