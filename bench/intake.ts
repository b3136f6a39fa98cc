/**
 * Intake under a spike, against a bare express handler in the same run.
 *
 *   npm run bench:intake -- [--connections 100] [--amount 3000] [--kb 200] [--users 100]
 *                           [--warmup 200] [--max-seconds 60] [--keep]
 *
 * Load: autocannon, `--connections` keep-alive connections on loopback, each posting
 * `{"nb": <notebook>}` (a ~`--kb` KB nbformat-4 notebook, distinct per request) to
 * `POST /services/gofer/` with `Authorization: token gofer_…` (round-robin over `--users`
 * learners). Each run is bounded by `--amount` requests AND `--max-seconds` seconds; a
 * `--warmup` run with a tenth of the connections precedes each measured run.
 *
 *   1. baseline: an express 5 app whose one POST route only parses the body (express.json,
 *      limit 25 MB) and answers 200 {"ok":true};
 *   2. Gofer: `run({http: true, workers: 0})` with a fresh SQLite database (no grading).
 *
 * Reported per target: acknowledged (2xx) requests per second, p50/p90/p99 acknowledgement
 * latency (autocannon's histogram, 2xx only), non-2xx, errors, timeouts. Then the database is
 * opened and counted: every acknowledged id must be stored once, intact (owner, sha256, size),
 * with exactly one grading job; no (owner, sha256) may be stored twice.
 *
 * Targets: p99 <= 50 ms, Gofer throughput >= 0.5 x baseline, zero lost, zero duplicated.
 * The exit code is 0 when the bench ran (whether or not targets are met), 1 on an error.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import express from 'express';
import { stringify } from 'yaml';
import { loadConfig } from '../src/config/load.js';
import type { Config } from '../src/config/schema.js';
import { createDb, migrate } from '../src/db/knex.js';
import { systemClock } from '../src/lib/clock.js';
import { silentLogger } from '../src/lib/logger.js';
import { run } from '../src/server.js';
import { ApiTokenStore } from '../src/submissions/identity.js';

// ---------------------------------------------------------------- autocannon (CommonJS, untyped)

interface AcRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  setupRequest?: (req: AcRequest, context: Ctx) => AcRequest;
  onResponse?: (status: number, body: string, context: Ctx) => void;
}
interface Ctx {
  seq?: number;
}
interface AcOptions {
  url: string;
  connections: number;
  amount: number;
  timeout: number;
  sampleInt: number;
  excludeErrorStats: boolean;
  method: string;
  headers: Record<string, string>;
  requests: AcRequest[];
}
interface AcLatency {
  mean: number;
  min: number;
  max: number;
  p50: number;
  p90: number;
  p99: number;
  p99_9: number;
  totalCount: number;
}
interface AcResult {
  latency: AcLatency;
  requests: { sent: number };
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
  statusCodeStats: Record<string, { count: number }>;
  duration: number;
}
type Autocannon = (opts: AcOptions, cb: (err: Error | null, result: AcResult) => void) => { stop(): void };
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

// ---------------------------------------------------------------- options

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '100' },
    amount: { type: 'string', default: '3000' },
    kb: { type: 'string', default: '200' },
    users: { type: 'string', default: '100' },
    warmup: { type: 'string', default: '200' },
    'max-seconds': { type: 'string', default: '60' },
    keep: { type: 'boolean', default: false },
  },
});
const CONNECTIONS = int('connections', 1, 1000);
const AMOUNT = int('amount', CONNECTIONS, 100_000);
const KB = int('kb', 1, 20_000);
const USERS = int('users', 1, 10_000);
const WARMUP = int('warmup', 0, 100_000);
const MAX_SECONDS = int('max-seconds', 1, 600);
const PATH = '/services/gofer/';
const TARGET = { p99Ms: 50, throughputRatio: 0.5 };

function int(name: keyof typeof values, min: number, max: number): number {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer from ${min} to ${max}`);
  return n;
}

// Nothing below may outlive this: each load run is bounded, and so is the whole bench.
const HARD_LIMIT_MS = (2 * (MAX_SECONDS + 15) + 120) * 1000;
setTimeout(() => {
  console.error(`bench:intake: still running after ${HARD_LIMIT_MS / 1000} s; giving up`);
  process.exit(1);
}, HARD_LIMIT_MS).unref();

// ---------------------------------------------------------------- the notebooks

const SEQ_MARK = '@@SEQ@@';

/**
 * A realistic ~KB-sized nbformat-4 notebook as compact JSON with one placeholder (in metadata)
 * for the request's sequence number: markdown and code cells with stream, HTML-table and
 * PNG outputs, the shapes that make real notebooks large. Compact JSON.stringify output is
 * what Gofer stores (it re-stringifies the parsed `nb`), so the sha256 of a request's
 * notebook text is the sha256 Gofer must store for it.
 */
function notebookTemplate(kb: number): { parts: [string, string]; text: (seq: number) => string } {
  const rnd = (n: number): string => randomBytes(n).toString('base64');
  const cells: unknown[] = [];
  const nb = {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {
      kernelspec: { name: 'python3', display_name: 'Python 3', language: 'python' },
      language_info: { name: 'python', version: '3.11.6', mimetype: 'text/x-python', file_extension: '.py' },
      section: '1',
      assignment: 'lab01',
      gofer_bench: { seq: SEQ_MARK },
    },
    cells,
  };
  const target = kb * 1024;
  let i = 0;
  let size = JSON.stringify(nb).length;
  while (size < target) {
    i++;
    const md = { cell_type: 'markdown', id: `md-${i}`, metadata: {}, source: [`## Question ${i}\n`, '\n', `Explain what the code below computes for part ${i}. ${rnd(90)}\n`] };
    const lines = Array.from({ length: 12 }, (_, k) => `value_${k} = compute(data[${k}], scale=${(k + 1) * i}) # ${rnd(18)}\n`);
    const outputs: unknown[] = [
      { output_type: 'stream', name: 'stdout', text: Array.from({ length: 20 }, (_, k) => `step ${k}: loss=${(1 / (k + i)).toFixed(6)} ${rnd(12)}\n`) },
      {
        output_type: 'execute_result',
        execution_count: i,
        metadata: {},
        data: {
          'text/plain': [`   a    b    c\n`, ...Array.from({ length: 8 }, (_, k) => `${k}  ${k * i}  ${k + i}  ${rnd(6)}\n`)],
          'text/html': [`<table class="dataframe"><thead><tr><th>a</th><th>b</th><th>c</th></tr></thead><tbody>`, ...Array.from({ length: 8 }, (_, k) => `<tr><td>${k}</td><td>${k * i}</td><td>${rnd(6)}</td></tr>`), `</tbody></table>`],
        },
      },
    ];
    // every third code cell draws a figure (~12 KB of base64 PNG, as matplotlib produces)
    if (i % 3 === 0) outputs.push({ output_type: 'display_data', metadata: {}, data: { 'image/png': rnd(9000) + '\n', 'text/plain': ['<Figure size 640x480 with 1 Axes>'] } });
    const code = { cell_type: 'code', id: `code-${i}`, metadata: {}, execution_count: i, source: lines, outputs };
    cells.push(md, code);
    size += JSON.stringify(md).length + JSON.stringify(code).length + 2;
  }
  const whole = JSON.stringify(nb);
  const at = whole.indexOf(SEQ_MARK);
  const parts: [string, string] = [whole.slice(0, at), whole.slice(at + SEQ_MARK.length)];
  const text = (seq: number): string => parts[0] + String(seq).padStart(8, '0') + parts[1];
  // Gofer's canonical form (JSON.stringify of the parsed notebook) must be exactly this text.
  if (JSON.stringify(JSON.parse(text(7))) !== text(7)) throw new Error('notebook template is not in canonical JSON form');
  return { parts, text };
}

const TEMPLATE = notebookTemplate(KB);
const BODY_HEAD = Buffer.from('{"nb":' + TEMPLATE.parts[0]);
const BODY_TAIL = Buffer.from(TEMPLATE.parts[1] + '}');
const NOTEBOOK_BYTES = TEMPLATE.text(0).length;

function bodyFor(seq: number): Buffer {
  return Buffer.concat([BODY_HEAD, Buffer.from(String(seq).padStart(8, '0')), BODY_TAIL]);
}

function owner(seq: number): string {
  return `learner${String(seq % USERS).padStart(4, '0')}`;
}

// ---------------------------------------------------------------- load

/** Every request ever sent carries a fresh sequence number: no two notebooks are the same. */
let nextSeq = 0;

interface Ack {
  seq: number;
  id?: string;
  duplicate?: boolean;
}

interface LoadFigures {
  target: string;
  sent: number;
  acknowledged: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  seconds: number;
  perSecond: number;
  latencyMs: { p50: number; p90: number; p99: number; p99_9: number; mean: number; max: number; samples: number };
  timedOut: boolean;
}

/** One bounded autocannon run: at most `amount` requests and `maxSeconds` seconds. */
function load(target: string, url: string, tokens: string[], opts: { connections: number; amount: number; maxSeconds: number }, acks: Ack[]): Promise<LoadFigures> {
  let lastAckAt = 0;
  let timedOut = false;
  const request: AcRequest = {
    method: 'POST',
    path: PATH,
    setupRequest: (req, context) => {
      const seq = nextSeq++;
      context.seq = seq;
      return { ...req, headers: { ...req.headers, Authorization: `token ${tokens[seq % tokens.length]!}` }, body: bodyFor(seq) };
    },
    onResponse: (status, body, context) => {
      if (status < 200 || status > 299) return;
      lastAckAt = performance.now();
      const ack: Ack = { seq: context.seq ?? -1 };
      try {
        const parsed = JSON.parse(body) as { id?: unknown; duplicate?: unknown };
        if (typeof parsed.id === 'string') ack.id = parsed.id;
        if (typeof parsed.duplicate === 'boolean') ack.duplicate = parsed.duplicate;
      } catch {
        // the baseline answers {"ok":true}; a Gofer answer without an id shows up as unidentified
      }
      acks.push(ack);
    },
  };
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let stopper: NodeJS.Timeout | undefined = undefined;
    const instance = autocannon(
      {
        url,
        connections: opts.connections,
        amount: opts.amount,
        timeout: 10,
        sampleInt: 100,
        // acknowledgement latency: 2xx answers only (a fast 429 or 500 is not an acknowledgement)
        excludeErrorStats: true,
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        requests: [request],
      },
      (err, r) => {
        clearTimeout(stopper);
        if (err) return reject(err);
        const seconds = ((lastAckAt || performance.now()) - started) / 1000;
        const statusCodes = Object.fromEntries(Object.entries(r.statusCodeStats).map(([code, s]) => [code, s.count]));
        resolve({
          target,
          sent: r.requests.sent,
          acknowledged: r['2xx'],
          non2xx: r.non2xx,
          errors: r.errors,
          timeouts: r.timeouts,
          statusCodes,
          seconds: round(seconds, 3),
          perSecond: round(r['2xx'] / seconds, 1),
          latencyMs: { p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, p99_9: r.latency.p99_9, mean: r.latency.mean, max: r.latency.max, samples: r.latency.totalCount },
          timedOut,
        });
      },
    );
    stopper = setTimeout(() => {
      timedOut = true;
      instance.stop();
    }, opts.maxSeconds * 1000);
  });
}

/** A warm-up (JIT, connection pools, SQLite page cache), then the measured spike. */
async function spike(target: string, url: string, tokens: string[], acks: Ack[]): Promise<LoadFigures> {
  if (WARMUP > 0) {
    const c = Math.max(1, Math.min(Math.ceil(CONNECTIONS / 10), WARMUP));
    await load(`${target} warm-up`, url, tokens, { connections: c, amount: Math.max(WARMUP, c), maxSeconds: MAX_SECONDS }, acks);
  }
  return load(target, url, tokens, { connections: CONNECTIONS, amount: AMOUNT, maxSeconds: MAX_SECONDS }, acks);
}

// ---------------------------------------------------------------- the two targets

async function startBaseline(): Promise<{ url: string; stop(): Promise<void> }> {
  const app = express();
  app.post(PATH, express.json({ limit: '25mb' }), (_req, res) => {
    res.status(200).json({ ok: true });
  });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The configuration file a deployment would have, with the example course and high limits. */
function writeBenchConfig(): { dir: string; config: Config } {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const dir = mkdtempSync(path.join(tmpdir(), 'gofer-bench-intake-'));
  const raw = {
    dataDir: path.join(dir, 'data'),
    server: { host: '127.0.0.1', port: 0, submissionsPerMinute: 100_000 },
    defaultCourse: '8x',
    courses: [
      {
        id: '8x',
        instructors: ['prof'],
        assignments: [{ id: 'lab01', aliases: ['1'], section: '1', tests: path.join(root, 'config/example/lab01/tests'), policy: 'otter' }],
      },
    ],
  };
  const file = path.join(dir, 'gofer.yaml');
  writeFileSync(file, stringify(raw));
  return { dir, config: loadConfig(file, {}) };
}

async function createTokens(config: Config): Promise<string[]> {
  const db = createDb(config, {});
  try {
    await migrate(db);
    const store = new ApiTokenStore(db, systemClock);
    const tokens: string[] = [];
    for (let u = 0; u < USERS; u++) tokens.push(await store.create(owner(u), 'bench:intake'));
    return tokens;
  } finally {
    await db.destroy();
  }
}

// ---------------------------------------------------------------- the count

interface Count {
  acknowledged: number;
  acknowledgedIds: number;
  acknowledgedWithoutId: number;
  acknowledgedAsDuplicate: number;
  submissions: number;
  gradingJobs: number;
  lost: number;
  duplicated: number;
  notIntact: number;
  storedUnacknowledged: number;
  submissionsWithoutJob: number;
  submissionsWithSeveralJobs: number;
}

async function count(config: Config, acks: Ack[]): Promise<Count> {
  const db = createDb(config, {});
  try {
    const rows = (await db.raw('SELECT id, owner, sha256, length(notebook) AS bytes FROM submissions')) as Array<{ id: string; owner: string; sha256: string; bytes: number }>;
    const byId = new Map(rows.map((r) => [r.id, r]));
    const [{ n: gradingJobs }] = (await db.raw('SELECT COUNT(*) AS n FROM grading_jobs')) as [{ n: number }];
    const [{ n: duplicated }] = (await db.raw(
      'SELECT COALESCE(SUM(n - 1), 0) AS n FROM (SELECT COUNT(*) AS n FROM submissions GROUP BY owner, sha256 HAVING COUNT(*) > 1)',
    )) as [{ n: number }];
    const [{ n: withoutJob }] = (await db.raw(
      'SELECT COUNT(*) AS n FROM submissions s WHERE NOT EXISTS (SELECT 1 FROM grading_jobs j WHERE j.submission_id = s.id)',
    )) as [{ n: number }];
    const [{ n: severalJobs }] = (await db.raw(
      'SELECT COUNT(*) AS n FROM (SELECT submission_id FROM grading_jobs GROUP BY submission_id HAVING COUNT(*) > 1)',
    )) as [{ n: number }];

    const ids = new Set<string>();
    let lost = 0;
    let notIntact = 0;
    for (const ack of acks) {
      if (!ack.id || ids.has(ack.id)) continue;
      ids.add(ack.id);
      const row = byId.get(ack.id);
      if (!row) {
        lost++;
        continue;
      }
      const text = TEMPLATE.text(ack.seq);
      if (row.owner !== owner(ack.seq) || row.sha256 !== sha256(text) || Number(row.bytes) !== text.length) notIntact++;
    }
    return {
      acknowledged: acks.length,
      acknowledgedIds: ids.size,
      acknowledgedWithoutId: acks.filter((a) => !a.id).length,
      acknowledgedAsDuplicate: acks.filter((a) => a.duplicate).length,
      submissions: rows.length,
      gradingJobs: Number(gradingJobs),
      lost,
      duplicated: Number(duplicated),
      notIntact,
      storedUnacknowledged: rows.filter((r) => !ids.has(r.id)).length,
      submissionsWithoutJob: Number(withoutJob),
      submissionsWithSeveralJobs: Number(severalJobs),
    };
  } finally {
    await db.destroy();
  }
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

// ---------------------------------------------------------------- main

function describe(f: LoadFigures): string {
  const codes = Object.entries(f.statusCodes)
    .map(([c, n]) => `${c}×${n}`)
    .join(' ');
  return [
    `  ${f.target}: ${f.acknowledged}/${f.sent} acknowledged in ${f.seconds} s = ${f.perSecond} req/s${f.timedOut ? ' (STOPPED at --max-seconds)' : ''}`,
    `    latency ms: p50 ${f.latencyMs.p50}, p90 ${f.latencyMs.p90}, p99 ${f.latencyMs.p99}, p99.9 ${f.latencyMs.p99_9}, max ${f.latencyMs.max}, mean ${f.latencyMs.mean}`,
    `    non-2xx ${f.non2xx}, errors ${f.errors}, timeouts ${f.timeouts}; status codes: ${codes || 'none'}`,
  ].join('\n');
}

async function main(): Promise<void> {
  const { dir, config } = writeBenchConfig();
  const cleanups: Array<() => Promise<void>> = [];
  try {
    console.log(
      `bench:intake — ${CONNECTIONS} connections, ${AMOUNT} requests (≤ ${MAX_SECONDS} s) per target after a ${WARMUP}-request warm-up; ` +
        `notebook ${(NOTEBOOK_BYTES / 1024).toFixed(1)} KB; ${USERS} learners; node ${process.version}, ${availableParallelism()} × ${cpus()[0]?.model ?? 'cpu'}`,
    );
    const tokens = await createTokens(config);

    // 1. the bare handler
    const baseline = await startBaseline();
    cleanups.push(baseline.stop);
    const baselineAcks: Ack[] = [];
    const bare = await spike('baseline (express.json only)', baseline.url, tokens, baselineAcks);
    await baseline.stop();
    cleanups.pop();
    console.log(describe(bare));

    // 2. Gofer
    const service = await run({ config, log: silentLogger(), http: true, workers: 0, env: {} });
    cleanups.push(service.stop);
    const goferAcks: Ack[] = [];
    const gofer = await spike('Gofer (POST /services/gofer/)', service.url!, tokens, goferAcks);
    await service.stop();
    cleanups.pop();
    console.log(describe(gofer));

    // 3. the count, on the stopped service's database (warm-up submissions included)
    const c = await count(config, goferAcks);
    const ratio = round(gofer.perSecond / bare.perSecond, 3);
    const checks = {
      p99: gofer.latencyMs.p99 <= TARGET.p99Ms,
      throughput: ratio >= TARGET.throughputRatio,
      lost: c.lost === 0 && c.acknowledgedWithoutId === 0,
      duplicated: c.duplicated === 0 && c.acknowledgedAsDuplicate === 0 && c.submissionsWithSeveralJobs === 0,
      intact: c.notIntact === 0 && c.submissionsWithoutJob === 0 && c.gradingJobs === c.submissions,
    };
    const mark = (ok: boolean): string => (ok ? 'PASS' : 'FAIL');
    console.log(`  throughput ratio Gofer/baseline: ${ratio}`);
    console.log(
      `  database: ${c.submissions} submissions, ${c.gradingJobs} grading jobs; ${c.acknowledgedIds} distinct acknowledged ids ` +
        `(${c.acknowledged} 2xx incl. warm-up, ${c.acknowledgedAsDuplicate} marked duplicate, ${c.acknowledgedWithoutId} without id); ` +
        `stored but unacknowledged ${c.storedUnacknowledged}; without job ${c.submissionsWithoutJob}, with several jobs ${c.submissionsWithSeveralJobs}`,
    );
    console.log(`  lost ${c.lost}, duplicated ${c.duplicated}, not intact ${c.notIntact}`);
    console.log(
      `  targets: p99 ${gofer.latencyMs.p99} ms ≤ ${TARGET.p99Ms} ${mark(checks.p99)}; throughput ${ratio} ≥ ${TARGET.throughputRatio} ${mark(checks.throughput)}; ` +
        `lost 0 ${mark(checks.lost)}; duplicated 0 ${mark(checks.duplicated)}; stored intact with one job ${mark(checks.intact)}`,
    );
    console.log(
      JSON.stringify({
        bench: 'intake',
        node: process.version,
        cpus: availableParallelism(),
        connections: CONNECTIONS,
        amount: AMOUNT,
        warmup: WARMUP,
        notebookBytes: NOTEBOOK_BYTES,
        users: USERS,
        baseline: bare,
        gofer,
        throughputRatio: ratio,
        count: c,
        targets: { p99Ms: TARGET.p99Ms, throughputRatio: TARGET.throughputRatio },
        pass: { ...checks, all: Object.values(checks).every(Boolean) },
      }),
    );
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    if (values.keep) console.error(`bench:intake: kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error('bench:intake failed:', err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  },
);
