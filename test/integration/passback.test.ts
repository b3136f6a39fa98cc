import { generateKeyPairSync, randomBytes, randomUUID, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { SignJWT, exportJWK, type JWK } from 'jose';
import { courseSchema } from '../../src/config/schema.js';
import type { Db } from '../../src/db/knex.js';
import { ConfigError } from '../../src/lib/errors.js';
import { assignmentComponent, blockKey, startDevPlatform, type DevComponent, type DevPlatform, type DevUser } from '../../src/dev-platform/index.js';
import { JobQueue } from '../../src/submissions/job-queue.js';
import type { GradingResult } from '../../src/grading/result.js';
import { silentLogger } from '../../src/lib/logger.js';
import { Metrics } from '../../src/lib/metrics.js';
import { KnexLtiPlugin } from '../../src/lti/knex-plugin.js';
import { LtiStore } from '../../src/lti/store.js';
import { AGS_SCOPE, AgsClient } from '../../src/passback/ags-client.js';
import { LtijsToolKeys } from '../../src/lti/tool-keys.js';
import { Dispatcher, type DispatcherOptions } from '../../src/passback/dispatcher.js';
import { passbackNotice } from '../../src/passback/notice.js';
import { PassbackOutbox, type PassbackView } from '../../src/passback/outbox.js';
import { policyLookup } from '../../src/passback/policy.js';
import { SubmissionStore } from '../../src/submissions/store.js';
import { ENGINES, freshDb } from '../helpers/databases.js';
import { sample } from '../helpers/metrics.js';

const ENC = 'test-encryption-key-0123456789';
const COURSE_KEY = 'course-v1:GoferX+PB+2026';
const CLIENT_ID = 'gofer-passport';
const HOUR = 3600_000;

/** Real time, plus whatever a test jumps ahead: shared by Gofer and the dev platform. */
const clock = { offset: 0, now: () => Date.now() + clock.offset };

/** The tool's key pair, as ltijs makes one at registration (PKCS#1 PEM), and its keyset server. */
interface ToolKey {
  kid: string;
  pem: string;
  publicPem: string;
  privateKey: KeyObject;
  jwks: { keys: JWK[] };
}
async function toolKey(): Promise<ToolKey> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = randomBytes(16).toString('hex');
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  return { kid, pem: privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(), publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(), privateKey, jwks: { keys: [jwk] } };
}
async function serveKeyset(key: ToolKey): Promise<{ url: string; server: Server }> {
  const server = createServer((_req, res) => {
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify(key.jwks));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/lti/keys`, server };
}

const block = (name: string): string => blockKey('PB', name);

function component(name: string, keysetUrl: string, extra: Partial<DevComponent> = {}): DevComponent {
  const tool = { loginUrl: 'http://127.0.0.1:9/lti/login', launchUrl: 'http://127.0.0.1:9/lti', keysetUrl };
  return assignmentComponent({ courseRun: 'PB', assignment: name, clientId: CLIENT_ID, tool }, extra);
}

const LEARNERS = ['ada', 'bob', 'carol', 'newbie', ...Array.from({ length: 40 }, (_, i) => `u${String(i).padStart(2, '0')}`)];
const users: DevUser[] = LEARNERS.map((u) => ({ username: u, sub: `sub-${u}-${randomBytes(4).toString('hex')}`, name: u, email: `${u}@example.org`, role: 'learner' }));
const subOf = (u: string): string => users.find((x) => x.username === u)!.sub;

const courses = [
  courseSchema.parse({
    id: 'pb',
    contexts: [COURSE_KEY],
    assignments: [
      { id: 'lab01', tests: 't', points: 4 },
      { id: 'lab02', tests: 't', points: 10 },
      { id: 'lab03', tests: 't', points: 2, due: '2020-01-01T00:00:00Z', late: 'reject' },
      { id: 'lab04', tests: 't', points: 2, late: 'reject' },
      { id: 'best', tests: 't', points: 5, select: 'best' },
    ],
  }),
];
const lookup = policyLookup({ courses });

function result(score: number, status: GradingResult['status'] = 'graded'): GradingResult {
  return { status, score, points: score * 4, maxPoints: 4, durationMs: 10, tests: [{ name: 'q1', points: score, maxPoints: 1, passed: score === 1, hidden: false }] };
}

describe('passback to an edX-like platform (sqlite)', function () {
  this.timeout(60_000);
  let key: ToolKey;
  let keyset: { url: string; server: Server };
  let db: Db;
  let drop: () => Promise<void>;
  let platform: DevPlatform;
  let components: DevComponent[];
  let lti: LtiStore;
  let outbox: PassbackOutbox;
  let subs: SubmissionStore;
  let queue: JobQueue;
  let ags: AgsClient;
  let dispatcher: Dispatcher;
  const started: Dispatcher[] = [];

  before(async () => {
    key = await toolKey();
    keyset = await serveKeyset(key);
  });
  after(() => new Promise<void>((r) => keyset.server.close(() => r())));

  beforeEach(async () => {
    clock.offset = 0;
    ({ db, drop } = await freshDb('sqlite'));
    components = [
      component('lab01', keyset.url),
      component('lab02', keyset.url, { agsMode: 'programmatic', weight: 5 }),
      component('lab03', keyset.url),
      component('lab04', keyset.url),
      component('best', keyset.url),
    ];
    platform = await startDevPlatform({ courseKey: COURSE_KEY, courseTitle: 'Passback', components, users, clock });
    await register(db, platform, components[0]!, key);
    lti = new LtiStore(db);
    outbox = new PassbackOutbox(db);
    subs = new SubmissionStore(db);
    // two of a learner's jobs run at once in "a slow grade of an older submission"
    queue = new JobQueue(db, { retryDelayMs: 1000, maxRunningPerLearner: 2, passback: { outbox, policy: lookup } });
    ags = newClient();
    dispatcher = newDispatcher();
    for (const u of LEARNERS.filter((x) => x !== 'newbie')) await identify(u);
  });
  afterEach(async () => {
    for (const d of started.splice(0)) await d.stop(1000);
    await platform?.stop();
    await drop?.();
  });

  function newClient(requestTimeoutMs = 5000): AgsClient {
    return new AgsClient({ keys: new LtijsToolKeys(new KnexLtiPlugin(db, clock, silentLogger()), ENC), clock, requestTimeoutMs, log: silentLogger() });
  }
  function newDispatcher(o: Partial<DispatcherOptions> = {}): Dispatcher {
    return new Dispatcher({
      outbox,
      ags,
      lti,
      policy: lookup,
      clock,
      log: silentLogger(),
      name: `test-${randomUUID().slice(0, 8)}`,
      concurrency: 8,
      pollMs: 20,
      maxAttempts: 8,
      retryDelayMs: 50,
      leaseMs: 120_000,
      ...o,
    });
  }
  function start(d: Dispatcher): Dispatcher {
    started.push(d);
    d.start();
    return d;
  }
  /** A learner's first launch; they have launched every component bound so far (each later bind is launched too). */
  async function identify(u: string): Promise<void> {
    await lti.saveIdentity({ issuer: platform.issuer, sub: subOf(u), clientId: CLIENT_ID, deploymentId: '1', name: u, email: null, roles: ['http://purl.imsglobal.org/vocab/lis/v2/membership#Learner'], hubUser: u }, clock.now());
    for (const b of await db('bindings').select('id')) await lti.recordLaunch({ issuer: platform.issuer, sub: subOf(u), bindingId: Number(b.id) }, clock.now());
  }
  /** What a launch of the component records: declarative mode names the component's own line item. */
  async function bind(assignment: string, o: { endAt?: number } = {}): Promise<void> {
    const c = components.find((x) => x.usageKey === block(assignment))!;
    const lineItemsUrl = `${platform.issuer}/api/lti_consumer/v1/lti/${c.configId}/lti-ags`;
    const own = platform.lineItems().find((i) => i.configId === c.configId && i.resourceLinkId === c.usageKey);
    const declarative = c.agsMode === 'declarative';
    const saved = await lti.saveBinding(
      {
        issuer: platform.issuer,
        clientId: c.clientId,
        deploymentId: '1',
        contextId: COURSE_KEY,
        resourceLinkId: c.usageKey,
        course: 'pb',
        assignment,
        lineItemUrl: declarative ? own!.id : null,
        lineItemsUrl,
        scopes: [declarative ? AGS_SCOPE.lineitemReadonly : AGS_SCOPE.lineitem, AGS_SCOPE.resultReadonly, AGS_SCOPE.score],
        endAt: o.endAt ?? null,
        scoreMaximum: null,
      },
      clock.now(),
    );
    for (const i of await lti.identities()) await lti.recordLaunch({ issuer: i.issuer, sub: i.sub, bindingId: saved.id }, clock.now());
  }
  /** A submission received, graded and recorded through the JobQueue (whose hook fills the outbox). */
  async function grade(owner: string, assignment: string, score: number, o: { receivedAt?: number; gradedAt?: number; status?: GradingResult['status'] } = {}): Promise<string> {
    const id = randomUUID();
    const receivedAt = o.receivedAt ?? clock.now();
    const out = await subs.create(
      { id, owner, course: 'pb', assignment, section: null, notebook: '{}', sha256: randomBytes(32).toString('hex') },
      { now: receivedAt, duplicateWindowMs: 0, perMinute: 100_000, maxAttempts: 3 },
    );
    expect(out.kind).to.equal('created');
    const job = await queue.claim('grader', Math.max(receivedAt, clock.now()), 60_000);
    expect(job?.submissionId).to.equal(id);
    expect(await queue.complete(job!.id, 'grader', id, result(score, o.status), o.gradedAt ?? clock.now())).to.equal(true);
    return id;
  }
  async function rowOf(submissionId: string): Promise<PassbackView> {
    const v = (await outbox.bySubmission([submissionId])).get(submissionId);
    expect(v, `a passback row for ${submissionId}`).to.not.equal(undefined);
    return v!;
  }
  function storedScore(assignment: string, user: string) {
    const c = components.find((x) => x.usageKey === block(assignment))!;
    return platform
      .lineItems()
      .filter((i) => i.configId === c.configId)
      .flatMap((i) => i.scores)
      .find((s) => s.userId === subOf(user));
  }
  function published(assignment: string, user: string): number | null | undefined {
    return platform.gradebook().find((g) => g.username === user && g.usageKey === block(assignment))?.published;
  }
  async function until(what: string, check: () => Promise<boolean>, ms = 20_000): Promise<void> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (await check()) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  it('delivers a score with the right body, and edX publishes score × weight', async () => {
    await bind('lab01');
    const gradedAt = Date.parse('2026-11-26T10:11:12.345Z');
    clock.offset = gradedAt - Date.now();
    const id = await grade('ada', 'lab01', 0.75, { gradedAt });
    expect((await rowOf(id)).status).to.equal('pending');
    await dispatcher.drain();
    const row = await rowOf(id);
    expect(row).to.include({ status: 'sent', attempts: 1, lastError: null });
    const s = storedScore('lab01', 'ada')!;
    expect(s).to.include({ scoreGiven: 3, scoreMaximum: 4, activityProgress: 'Completed', gradingProgress: 'FullyGraded' });
    expect(s.timestamp).to.equal('2026-11-26T10:11:12.345000Z');
    expect(published('lab01', 'ada')).to.be.closeTo(0.75 * 10, 1e-9);
    expect(platform.scoresReceived).to.equal(1);
    expect(platform.tokenRequests).to.equal(1);
  });

  it('sends nothing for a result that is not graded', async () => {
    await bind('lab01');
    const id = await grade('ada', 'lab01', 0, { status: 'timeout' });
    expect((await outbox.bySubmission([id])).size).to.equal(0);
    expect(await outbox.counts()).to.deep.equal({});
  });

  it('keeps retrying while the platform is down, and sends once it is back', async () => {
    await bind('lab01');
    platform.faults.down = true;
    const id = await grade('bob', 'lab01', 0.5);
    start(dispatcher);
    await until('three failed attempts', async () => (await rowOf(id)).attempts >= 3);
    const waiting = await rowOf(id);
    expect(waiting.status).to.be.oneOf(['pending', 'sending']);
    expect(platform.scoresReceived).to.equal(0);
    platform.faults.down = false;
    await until('sent', async () => (await rowOf(id)).status === 'sent');
    expect(platform.scoresReceived).to.equal(1);
    expect(storedScore('lab01', 'bob')!.scoreGiven).to.equal(2);
  });

  it('honours Retry-After on a 429', async () => {
    await bind('lab01');
    platform.faults.rateLimit = 1;
    platform.faults.retryAfterSeconds = 30;
    const id = await grade('carol', 'lab01', 1);
    const before = clock.now();
    await dispatcher.drain();
    const row = await rowOf(id);
    expect(row.status).to.equal('pending');
    expect(row.lastError).to.match(/429/);
    expect(row.nextAttemptAt - before).to.be.at.least(30_000);
    clock.offset += 20_000;
    await dispatcher.drain();
    expect((await rowOf(id)).status, 'not before Retry-After').to.equal('pending');
    clock.offset += 11_000;
    await dispatcher.drain();
    expect((await rowOf(id)).status).to.equal('sent');
    expect(platform.scoresReceived).to.equal(1);
  });

  it('retries through a run of 500s with growing back-off', async () => {
    await bind('lab01');
    const warm = await grade('ada', 'lab01', 0.25);
    await dispatcher.drain(); // a token is cached: the 500s hit the score POSTs
    expect((await rowOf(warm)).status).to.equal('sent');
    platform.faults.serverErrors = 3;
    const id = await grade('bob', 'lab01', 0.5);
    const delays: number[] = [];
    for (let i = 0; i < 10 && (await rowOf(id)).status !== 'sent'; i++) {
      const t = clock.now();
      await dispatcher.drain();
      const r = await rowOf(id);
      if (r.status === 'pending') {
        expect(r.lastError).to.match(/500.*Server Error/);
        delays.push(r.nextAttemptAt - t);
        clock.offset += r.nextAttemptAt - t + 1;
      }
    }
    const row = await rowOf(id);
    expect(row).to.include({ status: 'sent', attempts: 4 });
    expect(delays).to.have.length(3);
    expect(delays[2]!).to.be.greaterThan(delays[0]!);
    expect(platform.scoresReceived).to.equal(2);
  });

  it('gives up after maxAttempts with the platform answer, and an instructor can requeue', async () => {
    await bind('lab01');
    const d = newDispatcher({ maxAttempts: 2 });
    platform.faults.serverErrors = 10;
    const id = await grade('ada', 'lab01', 0.5);
    for (let i = 0; i < 3; i++) {
      await d.drain();
      clock.offset += 60_000;
    }
    const failed = await rowOf(id);
    expect(failed.status).to.equal('failed');
    expect(failed.lastError).to.match(/Gave up after 2 attempts.*500/);
    platform.faults.serverErrors = 0;
    expect(await outbox.requeue([failed.id], clock.now())).to.equal(1);
    await d.drain();
    expect((await rowOf(id)).status).to.equal('sent');
  });

  it('fails a score the platform refuses for good (another 4xx), with its answer', async () => {
    await bind('lab01');
    const real = globalThis.fetch;
    const refusing: typeof fetch = async (input, init) =>
      String(input).endsWith('/scores') ? new Response('{"scoreGiven":["A valid number is required."]}', { status: 400, headers: { 'Content-Type': 'application/json' } }) : real(input, init);
    ags = new AgsClient({ keys: new LtijsToolKeys(new KnexLtiPlugin(db, clock, silentLogger()), ENC), clock, requestTimeoutMs: 5000, fetch: refusing });
    const id = await grade('ada', 'lab01', 0.5);
    await newDispatcher().drain();
    const row = await rowOf(id);
    expect(row).to.include({ status: 'failed', attempts: 1 });
    expect(row.lastError).to.match(/answered 400: \{"scoreGiven":\["A valid number is required."\]\}/);
  });

  it('fails a row at once on an error no retry can help (a ConfigError), and retries any other error', async () => {
    await bind('lab01');
    const broken = await grade('ada', 'lab01', 0.5);
    await newDispatcher({
      policy: () => {
        throw new ConfigError('the course configuration cannot be read');
      },
    }).drain();
    expect(await rowOf(broken)).to.include({ status: 'failed', attempts: 0, lastError: 'Gofer could not send it: the course configuration cannot be read' });

    const flaky = await grade('bob', 'lab01', 0.5);
    await newDispatcher({
      policy: () => {
        throw new Error('database connection reset');
      },
    }).drain();
    expect(await rowOf(flaky)).to.include({ status: 'pending', attempts: 1, lastError: 'Gofer could not send it: database connection reset' });
  });

  it('waits for the next launch when the line item is gone and there is no container to look in', async () => {
    await bind('lab01');
    const id = await grade('ada', 'lab01', 0.5);
    await lti.setLineItem((await lti.bindingsFor('pb', 'lab01'))[0]!.id, `${platform.issuer}/api/lti_consumer/v1/lti/cfg-lab01/lti-ags/999`);
    await db('bindings').update({ lineitems_url: null });
    await dispatcher.drain();
    const row = await rowOf(id);
    // 404 without a line item container to look in: waiting for the next launch to say where
    expect(row.status).to.equal('waiting');
    expect(row.lastError).to.match(/line item is gone/);
  });

  it('gets one new token after a key rotation mid-run, even with 8 sends in flight', async () => {
    await bind('lab01');
    platform.faults.latencyMs = 20;
    for (let i = 0; i < 40; i++) await grade(`u${String(i).padStart(2, '0')}`, 'lab01', 0.5);
    start(dispatcher);
    await until('some sent', async () => (await outbox.counts()).sent! >= 8, 20_000);
    expect(platform.tokenRequests).to.equal(1);
    // requests arriving while the key is being replaced are held, so they meet the new key with the old token
    platform.faults.latencyMs = 2000;
    await platform.rotateKey();
    const sentAtRotation = (await outbox.counts()).sent!;
    platform.faults.latencyMs = 20;
    await until('all sent', async () => (await outbox.counts()).sent === 40);
    expect(sentAtRotation, 'rotated mid-run').to.be.below(40);
    expect(platform.tokenRequests, 'one token request per rotation').to.equal(2);
    expect(ags.stats.refused, 'the sends in flight were refused once each at most').to.be.within(1, 8);
    expect(platform.scoresReceived).to.equal(40);
    expect(await outbox.counts()).to.deep.equal({ sent: 40 });
    expect((await outbox.list()).every((r) => r.attempts === 1), 'a refused token is retried at once, not counted as a failed attempt').to.equal(true);
  });

  it('fetches a new token before the old one expires', async () => {
    await bind('lab01');
    await grade('ada', 'lab01', 0.1);
    await dispatcher.drain();
    expect(platform.tokenRequests).to.equal(1);
    clock.offset += 0.5 * HOUR;
    await grade('bob', 'lab01', 0.2);
    await dispatcher.drain();
    expect(platform.tokenRequests, 'still fresh at half its life').to.equal(1);
    clock.offset += 0.35 * HOUR; // 85 % of expires_in: still valid on the platform, but replaced
    await grade('carol', 'lab01', 0.3);
    await dispatcher.drain();
    expect(platform.tokenRequests).to.equal(2);
    clock.offset += 1.5 * HOUR; // past the second token's expiry
    await grade('ada', 'lab01', 0.4);
    await dispatcher.drain();
    expect(platform.tokenRequests).to.equal(3);
    expect(ags.stats.refused, 'no request ever carried an expired token').to.equal(0);
    expect(platform.scoresReceived).to.equal(4);
  });

  it('moves the metrics: outcomes, time per attempt, delay since the grade, token cache lookups', async () => {
    const metrics = new Metrics();
    metrics.collectFrom({ tokenCache: () => ags.tokenCache() });
    const d = newDispatcher({ metrics });
    const read = async (name: string, labels: Record<string, string> = {}): Promise<number | undefined> => sample(await metrics.scrape(), name, labels);
    await bind('lab01');
    await grade('ada', 'lab01', 0.5, { gradedAt: clock.now() - 90_000 }); // recorded 90 s ago
    await d.drain();
    expect(await read('gofer_passback_outcomes_total', { outcome: 'sent' })).to.equal(1);
    expect(await read('gofer_passback_attempt_seconds_count', { outcome: 'sent' })).to.equal(1);
    expect(await read('gofer_passback_attempt_seconds_sum', { outcome: 'sent' })).to.be.within(0, 10);
    expect(await read('gofer_passback_delay_seconds_count')).to.equal(1);
    expect(await read('gofer_passback_delay_seconds_sum')).to.be.within(90, 120);
    expect(await read('gofer_passback_delay_seconds_bucket', { le: '60' })).to.equal(0);
    expect(await read('gofer_passback_delay_seconds_bucket', { le: '300' })).to.equal(1);
    expect(await read('gofer_lti_token_lookups_total', { outcome: 'miss' })).to.equal(1);
    expect(await read('gofer_lti_token_lookups_total', { outcome: 'hit' })).to.equal(0);

    await grade('bob', 'lab01', 0.2);
    await d.drain();
    expect(await read('gofer_passback_outcomes_total', { outcome: 'sent' })).to.equal(2);
    expect(await read('gofer_lti_token_lookups_total', { outcome: 'hit' })).to.equal(1);
    expect(await read('gofer_lti_token_lookups_total', { outcome: 'refresh' })).to.equal(0);
    clock.offset += 0.85 * HOUR; // past the token's refresh time
    await grade('carol', 'lab01', 0.3);
    await d.drain();
    expect(await read('gofer_lti_token_lookups_total', { outcome: 'refresh' })).to.equal(1);
    expect(await read('gofer_lti_token_lookups_total', { outcome: 'miss' })).to.equal(1);
    expect(platform.tokenRequests).to.equal(2);

    platform.faults.rateLimit = 1;
    platform.faults.retryAfterSeconds = 30;
    await grade('ada', 'lab01', 0.9);
    await d.drain();
    expect(await read('gofer_passback_outcomes_total', { outcome: 'retry' })).to.equal(1);
    expect(await read('gofer_passback_attempt_seconds_count', { outcome: 'retry' })).to.equal(1);
    expect(await read('gofer_passback_outcomes_total', { outcome: 'sent' })).to.equal(3);
    expect(await read('gofer_passback_delay_seconds_count'), 'only a delivered grade has a delay').to.equal(3);
    // sent after its Retry-After: the wait counts in its delay
    const sum = (await read('gofer_passback_delay_seconds_sum'))!;
    clock.offset += 31_000;
    await d.drain();
    expect(await read('gofer_passback_outcomes_total', { outcome: 'sent' })).to.equal(4);
    expect(await read('gofer_passback_delay_seconds_count')).to.equal(4);
    expect((await read('gofer_passback_delay_seconds_sum'))! - sum).to.be.within(31, 45);
  });

  it('shares one token request among concurrent sends', async () => {
    await bind('lab01');
    platform.faults.latencyMs = 100;
    for (let i = 0; i < 8; i++) await grade(`u${String(i).padStart(2, '0')}`, 'lab01', 0.5);
    await dispatcher.drain();
    expect(platform.tokenRequests).to.equal(1);
    expect(platform.scoresReceived).to.equal(8);
  });

  it('retries a request that gets no answer within the request timeout', async () => {
    await bind('lab01');
    ags = newClient(300);
    const d = newDispatcher();
    platform.faults.latencyMs = 1000;
    const id = await grade('ada', 'lab01', 0.5);
    await d.drain();
    const row = await rowOf(id);
    expect(row.status).to.equal('pending');
    expect(row.lastError).to.match(/no answer within/);
    platform.faults.latencyMs = 0;
    clock.offset += 10_000;
    await d.drain();
    expect((await rowOf(id)).status).to.equal('sent');
  });

  it('counts a retried score that had already arrived as sent (an instructor\'s resend too)', async () => {
    await bind('lab01');
    const id = await grade('ada', 'lab01', 0.5);
    await dispatcher.drain();
    expect(platform.scoresReceived).to.equal(1);
    const first = await rowOf(id);
    // "Resend score": the platform already has it
    clock.offset += 1000;
    expect(await outbox.requeue([first.id], clock.now())).to.equal(1);
    await dispatcher.drain();
    const row = await rowOf(id);
    expect(row).to.include({ status: 'sent', attempts: 1 });
    expect(row.sentAt).to.be.greaterThan(first.sentAt!);
    expect(row.lastError).to.match(/already had this score/);
    expect(platform.scoresReceived).to.equal(1);
  });

  it('marks a score superseded when a newer one is already there', async () => {
    await bind('lab01');
    const id = await grade('ada', 'lab01', 0.9);
    const newer = await ags.postScore({ issuer: platform.issuer, clientId: CLIENT_ID }, (await lti.bindingsFor('pb', 'lab01'))[0]!.lineItemUrl!, {
      userId: subOf('ada'),
      scoreGiven: 1,
      scoreMaximum: 4,
      timestamp: clock.now() + 60_000,
    });
    expect(newer.kind).to.equal('delivered');
    await dispatcher.drain();
    const row = await rowOf(id);
    expect(row.status).to.equal('superseded');
    expect(row.lastError).to.match(/newer score/);
    expect(storedScore('lab01', 'ada')!.scoreGiven).to.equal(1);
  });

  it('does not send late work under late: reject (configured due date, or the platform end date)', async () => {
    await bind('lab03');
    await bind('lab04', { endAt: clock.now() - HOUR });
    const a = await grade('ada', 'lab03', 1);
    expect((await rowOf(a)).status, 'decided when recorded').to.equal('late');
    const b = await grade('ada', 'lab04', 1);
    expect((await rowOf(b)).status).to.equal('pending');
    await dispatcher.drain();
    const rb = await rowOf(b);
    expect(rb.status).to.equal('late');
    expect(rb.lastError).to.match(/after the due date/);
    expect((await rowOf(a)).lastError).to.match(/after the due date 2020-01-01/);
    expect(platform.scoresReceived).to.equal(0);
    // on time under the platform's end date: sent
    await bind('lab04', { endAt: clock.now() + HOUR });
    const c = await grade('bob', 'lab04', 1);
    await dispatcher.drain();
    expect((await rowOf(c)).status).to.equal('sent');
  });

  it('sends a score of 0, which edX stores but does not publish', async () => {
    await bind('lab01');
    const id = await grade('ada', 'lab01', 0);
    await dispatcher.drain();
    const row = await rowOf(id);
    expect(row).to.include({ status: 'sent', score: 0 });
    expect(storedScore('lab01', 'ada')).to.include({ scoreGiven: 0, scoreMaximum: 4 });
    expect(published('lab01', 'ada')).to.equal(null);
    const notice = passbackNotice(row);
    expect(notice.state).to.equal('sent');
    expect(notice.sentences.join(' ')).to.match(/score of 0 .* does not show it/);
  });

  it('waits for a learner with no identity, then sends once after wake', async () => {
    await bind('lab01');
    const id = await grade('newbie', 'lab01', 0.5);
    await dispatcher.drain();
    let row = await rowOf(id);
    expect(row.status).to.equal('waiting');
    expect(row.attempts).to.equal(0);
    expect(row.lastError).to.match(/newbie has not launched/);
    expect(row.nextAttemptAt - clock.now()).to.be.within(9 * 60_000, 10 * 60_000 + 1000);
    await dispatcher.drain();
    expect((await rowOf(id)).status).to.equal('waiting');
    expect(await dispatcher.wake('newbie'), 'no identity yet: still nothing to send').to.equal(1);
    await dispatcher.drain();
    expect((await rowOf(id)).status).to.equal('waiting');
    await identify('newbie');
    expect(await dispatcher.wake('newbie')).to.equal(1);
    await dispatcher.drain();
    row = await rowOf(id);
    expect(row.status).to.equal('sent');
    await dispatcher.drain();
    expect(platform.scoresReceived).to.equal(1);
  });

  it('waits for a binding, and an assignment wake sends its grades', async () => {
    const id = await grade('ada', 'lab01', 0.5);
    await dispatcher.drain();
    expect((await rowOf(id)).lastError).to.match(/no component of the course has been launched for assignment lab01/);
    await bind('lab01');
    expect(await dispatcher.wakeAssignment('pb', 'lab01')).to.equal(1);
    await dispatcher.drain();
    expect((await rowOf(id)).status).to.equal('sent');
  });

  it('wakes the running dispatcher after a grade is recorded (no waiting for the poll)', async () => {
    await bind('lab01');
    start(newDispatcher({ pollMs: 60_000 }));
    queue = new JobQueue(db, { retryDelayMs: 1000, maxRunningPerLearner: 1, passback: { outbox, policy: lookup } });
    await new Promise((r) => setTimeout(r, 50));
    const id = await grade('ada', 'lab01', 0.5);
    await until('sent', async () => (await rowOf(id)).status === 'sent', 5_000);
  });

  it('best: enqueues only improvements, and only the best reaches edX', async () => {
    await bind('best');
    const scores = [0.5, 0.4, 0.7, 0.7, 0.6, 0.9];
    const ids = [];
    for (const [i, s] of scores.entries()) ids.push(await grade('ada', 'best', s, { gradedAt: clock.now() + i }));
    const rows = await outbox.list({ owner: 'ada', assignment: 'best' });
    expect(rows.map((r) => r.score).reverse()).to.deep.equal([0.5, 0.7, 0.9]);
    expect(rows.map((r) => r.status).reverse()).to.deep.equal(['superseded', 'superseded', 'pending']);
    await dispatcher.drain();
    expect(platform.scoresReceived).to.equal(1);
    expect(storedScore('best', 'ada')!.scoreGiven).to.be.closeTo(4.5, 1e-9);
    // after a score was sent, only a better one is queued
    await grade('ada', 'best', 0.8);
    await grade('ada', 'best', 0.95, { gradedAt: clock.now() + 10 });
    expect((await outbox.list({ owner: 'ada', assignment: 'best' })).map((r) => r.score)).to.deep.equal([0.95, 0.9, 0.7, 0.5]);
  });

  it('latest: a slow grade of an older submission does not overwrite a newer one', async () => {
    await bind('lab01');
    const t = clock.now();
    const older = randomUUID();
    // two submissions; the newer one is graded first
    await subs.create({ id: older, owner: 'ada', course: 'pb', assignment: 'lab01', section: null, notebook: '{}', sha256: 'a'.repeat(64) }, { now: t - 2000, duplicateWindowMs: 0, perMinute: 100, maxAttempts: 3 });
    const newer = randomUUID();
    await subs.create({ id: newer, owner: 'ada', course: 'pb', assignment: 'lab01', section: null, notebook: '{}', sha256: 'b'.repeat(64) }, { now: t - 1000, duplicateWindowMs: 0, perMinute: 100, maxAttempts: 3 });
    const j1 = (await queue.claim('w1', t, 60_000))!;
    const j2 = (await queue.claim('w2', t, 60_000))!;
    expect([j1.submissionId, j2.submissionId]).to.deep.equal([older, newer]);
    await queue.complete(j2.id, 'w2', newer, result(0.6), t);
    await queue.complete(j1.id, 'w1', older, result(1), t + 5000);
    expect((await outbox.bySubmission([older])).size).to.equal(0);
    await dispatcher.drain();
    expect(storedScore('lab01', 'ada')!.scoreGiven).to.be.closeTo(2.4, 1e-9);
  });

  it('programmatic mode: finds or creates the line item once, and again when it is deleted', async () => {
    await bind('lab02');
    for (let i = 0; i < 6; i++) await grade(`u${String(i).padStart(2, '0')}`, 'lab02', 0.5);
    await dispatcher.drain();
    expect(await outbox.counts()).to.deep.equal({ sent: 6 });
    const items = platform.lineItems().filter((i) => i.configId === 'cfg-lab02');
    expect(items).to.have.length(1);
    expect(items[0]).to.include({ resourceLinkId: block('lab02'), resourceId: 'lab02', scoreMaximum: 10 });
    expect(items[0]!.scores).to.have.length(6);
    expect(published('lab02', 'u00')).to.be.closeTo(0.5 * 5, 1e-9);
    const binding = (await lti.bindingsFor('pb', 'lab02'))[0]!;
    expect(binding.lineItemUrl).to.equal(items[0]!.id);

    // deleted on the platform: a 404, looked up again, created again
    await deleteLineItem(items[0]!.id);
    const id = await grade('ada', 'lab02', 0.7);
    await dispatcher.drain();
    expect((await rowOf(id)).status).to.equal('sent');
    const again = platform.lineItems().filter((i) => i.configId === 'cfg-lab02');
    expect(again).to.have.length(1);
    expect(again[0]!.id).to.not.equal(items[0]!.id);
    expect((await lti.binding(binding.id))!.lineItemUrl).to.equal(again[0]!.id);
  });

  it('a dispatcher killed mid-run: its rows are sent exactly once by the next one', async () => {
    await bind('lab01');
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push(await grade(`u${String(i).padStart(2, '0')}`, 'lab01', 0.5));
    // the dead process had claimed every row and had already POSTed two of them
    const claimed = await outbox.claim('dead-host/1', clock.now(), 120_000, 10);
    expect(claimed).to.have.length(5);
    for (const r of claimed.slice(0, 2)) {
      const out = await ags.postScore({ issuer: platform.issuer, clientId: CLIENT_ID }, (await lti.bindingsFor('pb', 'lab01'))[0]!.lineItemUrl!, {
        userId: subOf(r.owner),
        scoreGiven: r.score * 4,
        scoreMaximum: 4,
        timestamp: r.gradedAt,
      });
      expect(out.kind).to.equal('delivered');
    }
    expect(platform.scoresReceived).to.equal(2);
    const next = newDispatcher();
    await next.drain();
    expect(await outbox.counts(), 'leased rows are left alone').to.deep.equal({ sending: 5 });
    clock.offset += 121_000;
    await next.drain();
    expect(await outbox.counts()).to.deep.equal({ sent: 5 });
    expect(platform.scoresReceived, 'exactly once each').to.equal(5);
    for (const id of ids) expect((await rowOf(id)).attempts, 'the dead holder recorded nothing').to.equal(1);
    expect(await outbox.markSent(claimed[0]!.id, 'dead-host/1', clock.now()), 'the dead holder can no longer finish').to.equal(false);
  });

  it('stop() gives back rows still in flight after the grace period', async () => {
    await bind('lab01');
    platform.faults.latencyMs = 3000;
    const id = await grade('ada', 'lab01', 0.5);
    const d = newDispatcher();
    d.start();
    await until('sending', async () => (await rowOf(id)).status === 'sending');
    await d.stop(100);
    const row = await rowOf(id);
    expect(row).to.include({ status: 'pending', attempts: 0 });
    platform.faults.latencyMs = 0;
  });

  async function deleteLineItem(url: string): Promise<void> {
    const tokenUrl = platform.endpoints(components[0]!).tokenUrl;
    const iat = Math.floor(clock.now() / 1000) - 5;
    const assertion = await new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: key.kid }).setIssuer(CLIENT_ID).setSubject(CLIENT_ID).setAudience(tokenUrl).setIssuedAt(iat).setExpirationTime(iat + 60).sign(key.privateKey);
    const form = new URLSearchParams({ grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion, scope: AGS_SCOPE.lineitem });
    const tok = (await (await fetch(tokenUrl, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: form })).json()) as { access_token: string };
    const res = await fetch(url, { method: 'DELETE', headers: { Authorization: `Bearer ${tok.access_token}` } });
    expect(res.status).to.equal(204);
  }
});

for (const engine of ENGINES) {
  describe(`passback outbox (${engine})`, function () {
    this.timeout(30_000);
    let db: Db;
    let drop: () => Promise<void>;
    let outbox: PassbackOutbox;
    const T0 = 1_780_000_000_000;

    beforeEach(async function () {
      ({ db, drop } = await freshDb(engine));
      outbox = new PassbackOutbox(db);
    });
    afterEach(async () => drop?.());

    async function enqueueMany(n: number, owner = (i: number) => `u${i}`): Promise<void> {
      for (let i = 0; i < n; i++) {
        const id = randomUUID();
        await db('submissions').insert({ id, owner: owner(i), course: 'pb', assignment: 'lab01', section: null, received_at: T0, sha256: 'a'.repeat(64), status: 'graded' });
        const [job] = await db('grading_jobs').insert({ submission_id: id, status: 'done', attempts: 1, max_attempts: 3, run_at: T0, created_at: T0, updated_at: T0 }).returning('id');
        const [res] = await db('results')
          .insert({ submission_id: id, job_id: typeof job === 'object' ? job.id : job, status: 'graded', score: 0.5, points: 1, max_points: 2, duration_ms: 1, created_at: T0 })
          .returning('id');
        await db.transaction((trx) =>
          outbox.enqueue(trx, {
            submissionId: id,
            resultId: Number(typeof res === 'object' ? res.id : res),
            owner: owner(i),
            course: 'pb',
            assignment: 'lab01',
            score: 0.5,
            gradedAt: T0 + i,
            receivedAt: T0,
            policy: { select: 'latest', late: 'accept' },
          }),
        );
      }
    }

    it('hands each row to exactly one of many concurrent claimers, and reclaims expired leases', async () => {
      await enqueueMany(40);
      const claimed: number[] = [];
      await Promise.all(
        Array.from({ length: 4 }, async (_, w) => {
          for (;;) {
            const rows = await outbox.claim(`d${w}`, T0 + 100, 60_000, 3);
            if (rows.length === 0) return;
            claimed.push(...rows.map((r) => r.id));
          }
        }),
      );
      expect(claimed).to.have.length(40);
      expect(new Set(claimed).size).to.equal(40);
      expect(await outbox.counts()).to.deep.equal({ sending: 40 });
      expect(await outbox.claim('late', T0 + 30_000, 60_000, 100)).to.have.length(0);
      const again = await outbox.claim('late', T0 + 60_101, 60_000, 100);
      expect(again).to.have.length(40);
      expect(again.every((r) => r.attempts === 0 && r.receivedAt === T0), 'attempts count requests made, not claims').to.equal(true);
    });

    it('waiting rows are re-checked without counting attempts, and wake makes them due', async () => {
      await enqueueMany(2, () => 'ada');
      // the older row was superseded by the newer grade before it was sent
      expect(await outbox.counts()).to.deep.equal({ superseded: 1, pending: 1 });
      const [row] = await outbox.claim('d', T0 + 10, 60_000, 5);
      expect(row!.attempts).to.equal(0);
      expect(await outbox.markWaiting(row!.id, 'd', 'no identity', T0 + 600_000)).to.equal(true);
      expect(await outbox.claim('d', T0 + 20, 60_000)).to.have.length(0);
      expect(await outbox.wake('ada', T0 + 30)).to.equal(1);
      const [woken] = await outbox.claim('d', T0 + 30, 60_000);
      expect(woken!.attempts).to.equal(0);
      expect(await outbox.retryAt(woken!.id, 'd', T0 + 1000, 'HTTP 500')).to.equal(true);
      expect(await outbox.claim('d', T0 + 999, 60_000)).to.have.length(0);
      const [retried] = await outbox.claim('d', T0 + 1000, 60_000);
      expect(retried!.attempts).to.equal(1);
      expect(await outbox.release(retried!.id, 'd')).to.equal(true);
      // due at once, in its old place
      expect((await outbox.get(retried!.id))!).to.include({ status: 'pending', attempts: 1, nextAttemptAt: T0 + 1000 });
      expect(await outbox.markSent(retried!.id, 'd', T0 + 1002), 'released: no longer held').to.equal(false);
    });
  });
}

/** What ltijs's registerPlatform stores: the platform document, and the tool key pair encrypted. */
async function register(db: Db, platform: DevPlatform, c: DevComponent, key: ToolKey): Promise<void> {
  const plugin = new KnexLtiPlugin(db, clock, silentLogger());
  const ep = platform.endpoints(c);
  const where = { platformUrl: platform.issuer, clientId: c.clientId };
  await plugin.Replace(false, 'platform', where, {
    platformUrl: platform.issuer,
    clientId: c.clientId,
    platformName: 'edX (dev)',
    authEndpoint: ep.authUrl,
    accesstokenEndpoint: ep.tokenUrl,
    kid: key.kid,
    authConfig: { method: 'JWK_SET', key: ep.keysetUrl },
  });
  const index = { kid: key.kid, ...where };
  await plugin.Replace(ENC, 'publickey', where, { key: key.publicPem, kid: key.kid }, index);
  await plugin.Replace(ENC, 'privatekey', where, { key: key.pem, kid: key.kid }, index);
}
