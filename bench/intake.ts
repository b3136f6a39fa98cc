/**
 * Intake under a spike, against a bare express handler in the same run.
 *
 *   npm run bench:intake -- [--connections 100] [--amount 3000] [--rounds 3] [--paced 100]
 *                           [--paced-seconds 10] [--kb 200] [--users 100] [--warmup 200]
 *                           [--max-seconds 60] [--keep]
 *
 * Load: autocannon on loopback, posting `{"nb": <notebook>}` (a ~`--kb` KB nbformat-4 notebook,
 * distinct per request) to `POST /services/gofer/` with `Authorization: token gofer_…`
 * (round-robin over `--users` learners). Every run is bounded by a request count AND
 * `--max-seconds` seconds.
 *
 *   - The spike: `--connections` keep-alive connections in a closed loop (each sends its next
 *     notebook as soon as the last is answered), `--amount` requests, `--rounds` times per
 *     target, the rounds alternating which target goes first; medians are compared.
 *   - Paced: `--paced` notebooks a second arriving evenly (that many clients, each sending one a
 *     second on its own connection, started 1/`--paced` s apart) for `--paced-seconds`: the
 *     acknowledgement latency learners see when the service is not saturated. (autocannon's own
 *     --overallRate would send each second's requests all at once.)
 *
 * Targets, served side by side from this process's main thread as in production (the load
 * generator runs in a worker thread of the same process):
 *   1. baseline: an express 5 app whose one POST route only parses the body (express.json,
 *      limit 25 MB) and answers 200 {"ok":true};
 *   2. Gofer: `run({http: true, workers: 0})` with a fresh SQLite database (no grading).
 * A `--warmup` run with a tenth of the connections warms each up first.
 *
 * Reported per run: acknowledged (2xx) requests per second, p50/p90/p99 acknowledgement
 * latency (autocannon's histogram, 2xx only), non-2xx, errors, timeouts; the server thread's
 * event-loop utilisation and delay; CPU cores in use by thread (Linux); and, from per-request
 * timing, the latency of each connection's first request (connect + accept) apart from the
 * keep-alive requests after it. Then the database is opened and counted: every acknowledged id
 * must be stored once, intact (owner, sha256, size), with exactly one grading job; no
 * (owner, sha256) may be stored twice.
 *
 * Targets: p99 <= 50 ms, Gofer throughput >= 0.5 x baseline, zero lost, zero duplicated. The
 * p99 is reported for the spike and for the paced run. In the spike, Little's law bounds it:
 * with C clients always waiting, the mean latency is C / throughput, so 50 ms for 100 clients
 * needs 2,000 acknowledgements a second.
 * The exit code is 0 when the bench ran (whether or not targets are met), 1 on an error.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { monitorEventLoopDelay, performance as perfHooks } from 'node:perf_hooks';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import express from 'express';
import { stringify } from 'yaml';
import { loadConfig } from '../src/config/load.js';
import type { Config } from '../src/config/schema.js';
import { createDb, migrate } from '../src/db/knex.js';
import { systemClock } from '../src/lib/clock.js';
import { silentLogger } from '../src/lib/logger.js';
import { run } from '../src/server.js';
import { ApiTokenStore } from '../src/submissions/identity.js';

const PATH = '/services/gofer/';
const TARGET = { p99Ms: 50, throughputRatio: 0.5 };
const SEQ_MARK = '@@SEQ@@';

// ================================================================ shared by both threads

/** What the load thread needs; the notebook template travels as text so both threads agree. */
interface LoadSetup {
  head: string;
  tail: string;
  tokens: string[];
}

/** One bounded load run, as asked of the load thread. */
interface LoadJob {
  target: string;
  url: string;
  connections: number;
  amount: number;
  maxSeconds: number;
  /** Paced: this many clients each send one request a second, started evenly over a second. */
  rate?: number;
}

/** [sequence number, submission id or null, duplicate flag] of one 2xx answer. */
type Ack = [number, string | null, boolean];

interface Percentiles {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

interface LoadFigures {
  target: string;
  /** Requests offered per second (paced), or null for the closed loop. */
  offeredPerSecond: number | null;
  sent: number;
  acknowledged: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  seconds: number;
  perSecond: number;
  /** autocannon's histogram (whole ms), 2xx answers only. */
  latencyMs: { p50: number; p90: number; p99: number; p99_9: number; mean: number; max: number; samples: number };
  /** Per-request timing (from building the request to its answer), split by position on the connection. */
  firstOnConnectionMs: Percentiles;
  keepAliveMs: Percentiles;
  stoppedAtMaxSeconds: boolean;
  /** Event-loop utilisation of the servers' (main) thread during the run, 0..1. */
  serverEventLoopUtilization?: number;
  /** Bytes this process caused to be written to disk (Linux /proc/self/io) per acknowledged request, in KB. */
  diskWritesPerAckKb?: number;
  /** How late the servers' event loop ran its timers (perf_hooks.monitorEventLoopDelay, 1 ms resolution). */
  serverLoopDelayMs?: { p50: number; p99: number; max: number };
  /** CPU seconds per second of the run, by thread kind (Linux /proc), summed over this process's threads. */
  cpuCores?: Record<string, number>;
}

/** `tid`: the load thread's Linux thread id ('' elsewhere), to tell its CPU time apart. */
type LoadReply = { figures: LoadFigures; acks: Ack[]; tid: string } | { error: string };

function seqText(seq: number): string {
  return String(seq).padStart(8, '0');
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function percentiles(values: number[]): Percentiles {
  const v = [...values].sort((a, b) => a - b);
  const at = (q: number): number => (v.length ? round(v[Math.min(v.length - 1, Math.ceil(q * v.length) - 1)]!, 1) : 0);
  return { n: v.length, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: v.length ? round(v[v.length - 1]!, 1) : 0 };
}

// ================================================================ the load thread

// autocannon is CommonJS without types: the little of it used here.
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
  builtAt?: number;
}
interface AcOptions {
  url: string;
  connections: number;
  amount: number;
  connectionRate?: number;
  ignoreCoordinatedOmission?: boolean;
  timeout: number;
  sampleInt: number;
  excludeErrorStats: boolean;
  method: string;
  headers: Record<string, string>;
  requests: AcRequest[];
}
interface AcResult {
  latency: { mean: number; max: number; p50: number; p90: number; p99: number; p99_9: number; totalCount: number };
  requests: { sent: number };
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
  statusCodeStats: Record<string, { count: number }>;
}
interface Autocannon {
  (opts: AcOptions, cb: (err: Error | null, result: AcResult) => void): { stop(): void };
  /** Off the main thread autocannon hands back raw (encoded) histograms; this decodes them. */
  aggregateResult(results: AcResult[], opts: AcOptions): AcResult;
}

function loadThread(setup: LoadSetup): void {
  const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;
  const head = Buffer.from('{"nb":' + setup.head);
  const tail = Buffer.from(setup.tail + '}');
  /** Every request ever sent carries a fresh sequence number: no two notebooks are the same. */
  let nextSeq = 0;

  function load(job: LoadJob): Promise<{ figures: LoadFigures; acks: Ack[] }> {
    const acks: Ack[] = [];
    const firstSeq = nextSeq;
    // paced: one connection per request a second (see LoadJob.rate)
    const connections = job.rate ?? job.connections;
    const first: number[] = [];
    const later: number[] = [];
    let lastAckAt = 0;
    let stopped = false;
    const request: AcRequest = {
      method: 'POST',
      path: PATH,
      setupRequest: (req, context) => {
        const seq = nextSeq++;
        context.seq = seq;
        const body = Buffer.concat([head, Buffer.from(seqText(seq)), tail]);
        context.builtAt = performance.now();
        return { ...req, headers: { ...req.headers, Authorization: `token ${setup.tokens[seq % setup.tokens.length]!}` }, body };
      },
      onResponse: (status, body, context) => {
        if (status < 200 || status > 299) return;
        const now = performance.now();
        lastAckAt = now;
        const seq = context.seq ?? -1;
        // autocannon builds every connection's first request up front, so those are the first seqs
        (seq - firstSeq < connections ? first : later).push(now - (context.builtAt ?? now));
        let id: string | null = null;
        let duplicate = false;
        try {
          const parsed = JSON.parse(body) as { id?: unknown; duplicate?: unknown };
          if (typeof parsed.id === 'string') id = parsed.id;
          duplicate = parsed.duplicate === true;
        } catch {
          // the baseline answers {"ok":true}; a Gofer 2xx without an id is counted as such
        }
        acks.push([seq, id, duplicate]);
      },
    };
    const opts: AcOptions = {
      url: job.url,
      connections,
      amount: job.amount,
      timeout: 10,
      sampleInt: 100,
      // acknowledgement latency: 2xx answers only (a fast 429 or 500 is not an acknowledgement)
      excludeErrorStats: true,
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      requests: [request],
    };
    return new Promise((resolve, reject) => {
      const started = performance.now();
      const finish = (raws: AcResult[]): void => {
        let r: AcResult;
        try {
          r = autocannon.aggregateResult(raws, opts);
        } catch (e) {
          return reject(e as Error);
        }
        const seconds = ((lastAckAt || performance.now()) - started) / 1000;
        resolve({
          acks,
          figures: {
            target: job.target,
            offeredPerSecond: job.rate ?? null,
            sent: r.requests.sent,
            acknowledged: r['2xx'],
            non2xx: r.non2xx,
            errors: r.errors,
            timeouts: r.timeouts,
            statusCodes: Object.fromEntries(Object.entries(r.statusCodeStats).map(([code, s]) => [code, s.count])),
            seconds: round(seconds, 3),
            perSecond: round(r['2xx'] / seconds, 1),
            latencyMs: { p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, p99_9: r.latency.p99_9, mean: r.latency.mean, max: r.latency.max, samples: r.latency.totalCount },
            firstOnConnectionMs: percentiles(first),
            keepAliveMs: percentiles(later),
            stoppedAtMaxSeconds: stopped,
          },
        });
      };
      const instances: Array<{ stop(): void }> = [];
      const timers: NodeJS.Timeout[] = [];
      const stopper = setTimeout(() => {
        stopped = true;
        timers.forEach(clearTimeout);
        instances.forEach((i) => i.stop());
      }, job.maxSeconds * 1000);
      if (!job.rate) {
        instances.push(
          autocannon(opts, (err, raw) => {
            clearTimeout(stopper);
            if (err) reject(err);
            else finish([raw]);
          }),
        );
        return;
      }
      // Paced: `rate` clients, each sending one request a second on its own connection, started
      // 1/rate s apart, so requests arrive evenly at `rate` a second (an open loop, as learners
      // submitting independently; autocannon's own --overallRate sends them all at each second).
      const raws: AcResult[] = [];
      const perClient = Math.max(1, Math.floor(job.amount / job.rate));
      let failed = false;
      for (let c = 0; c < job.rate; c++) {
        timers.push(
          setTimeout(() => {
            if (stopped || failed) return;
            const one: AcOptions = { ...opts, connections: 1, amount: perClient, connectionRate: 1, ignoreCoordinatedOmission: true };
            instances.push(
              autocannon(one, (err, raw) => {
                if (failed) return;
                if (err) {
                  failed = true;
                  clearTimeout(stopper);
                  return reject(err);
                }
                raws.push(raw);
                if (raws.length === job.rate) {
                  clearTimeout(stopper);
                  finish(raws);
                }
              }),
            );
          }, (c * 1000) / job.rate),
        );
      }
    });
  }

  let tid = '';
  try {
    tid = readlinkSync('/proc/thread-self').split('/').pop() ?? '';
  } catch {
    // not Linux
  }
  parentPort!.on('message', (job: LoadJob) => {
    load(job).then(
      (reply) => parentPort!.postMessage({ ...reply, tid } satisfies LoadReply),
      (err: unknown) => parentPort!.postMessage({ error: err instanceof Error ? (err.stack ?? err.message) : String(err) } satisfies LoadReply),
    );
  });
}

// ================================================================ the main thread

/**
 * A realistic ~KB-sized nbformat-4 notebook as compact JSON with one placeholder (in metadata)
 * for the request's sequence number: markdown and code cells with stream, HTML-table and
 * PNG outputs, the shapes that make real notebooks large. Compact JSON.stringify output is
 * what Gofer stores (it re-stringifies the parsed `nb`), so the sha256 of a request's
 * notebook text is the sha256 Gofer must store for it.
 */
function notebookTemplate(kb: number): { head: string; tail: string; text: (seq: number) => string } {
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
  const head = whole.slice(0, at);
  const tail = whole.slice(at + SEQ_MARK.length);
  const text = (seq: number): string => head + seqText(seq) + tail;
  // Gofer's canonical form (JSON.stringify of the parsed notebook) must be exactly this text.
  if (JSON.stringify(JSON.parse(text(7))) !== text(7)) throw new Error('notebook template is not in canonical JSON form');
  return { head, tail, text };
}

function options() {
  const { values } = parseArgs({
    options: {
      connections: { type: 'string', default: '100' },
      amount: { type: 'string', default: '3000' },
      rounds: { type: 'string', default: '3' },
      paced: { type: 'string', default: '100' },
      'paced-seconds': { type: 'string', default: '10' },
      kb: { type: 'string', default: '200' },
      users: { type: 'string', default: '100' },
      warmup: { type: 'string', default: '200' },
      'max-seconds': { type: 'string', default: '60' },
      keep: { type: 'boolean', default: false },
    },
  });
  const int = (name: keyof typeof values, min: number, max: number): number => {
    const n = Number(values[name]);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer from ${min} to ${max}`);
    return n;
  };
  const connections = int('connections', 1, 1000);
  return {
    connections,
    amount: int('amount', connections, 100_000),
    rounds: int('rounds', 1, 20),
    paced: int('paced', 0, 2000),
    pacedSeconds: int('paced-seconds', 1, 600),
    kb: int('kb', 1, 20_000),
    users: int('users', 1, 10_000),
    warmup: int('warmup', 0, 100_000),
    maxSeconds: int('max-seconds', 1, 600),
    keep: values.keep === true,
  };
}
type Options = ReturnType<typeof options>;

function learner(seq: number, users: number): string {
  return `learner${String(seq % users).padStart(4, '0')}`;
}

/**
 * CPU seconds used so far by each of this process's threads, by thread id (Linux only: an
 * empty map elsewhere).
 */
function threadCpu(): Map<string, number> {
  const out = new Map<string, number>();
  const tick = 100; // USER_HZ
  let tids: string[] = [];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const seconds = (Number(fields[11]) + Number(fields[12])) / tick;
      out.set(tid, seconds);
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/** Bytes this process has caused to be written to storage so far (0 where /proc is absent). */
function writtenBytes(): number {
  try {
    return Number(/^write_bytes: (\d+)$/m.exec(readFileSync('/proc/self/io', 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/**
 * Cores in use during a run, by kind of thread: the main thread (the servers), the load thread
 * (autocannon), and the others (libuv's pool, which runs SQLite, and V8's helpers such as the
 * garbage collector's).
 */
function cpuCores(before: Map<string, number>, after: Map<string, number>, seconds: number, loadTid: string): Record<string, number> {
  const byKind: Record<string, number> = {};
  for (const [tid, s] of after) {
    const kind = tid === String(process.pid) ? 'main' : tid === loadTid ? 'load thread' : 'other threads';
    byKind[kind] = (byKind[kind] ?? 0) + (s - (before.get(tid) ?? 0));
  }
  const total = Object.values(byKind).reduce((a, b) => a + b, 0);
  return Object.fromEntries([...Object.entries(byKind).map(([k, v]) => [k, round(v / seconds, 2)] as const), ['total', round(total / seconds, 2)] as const].filter(([, v]) => v > 0));
}

/** The load thread: a worker of this same script, one bounded load run at a time. */
class LoadThread {
  private readonly worker: Worker;
  constructor(setup: LoadSetup) {
    this.worker = new Worker(new URL(import.meta.url), { workerData: setup });
    this.worker.unref();
  }

  run(job: LoadJob): Promise<{ figures: LoadFigures; acks: Ack[] }> {
    const elu0 = perfHooks.eventLoopUtilization();
    const cpu0 = threadCpu();
    const io0 = writtenBytes();
    const wall0 = performance.now();
    const loopDelay = monitorEventLoopDelay({ resolution: 1 });
    loopDelay.enable();
    return new Promise((resolve, reject) => {
      // the load thread stops autocannon at job.maxSeconds; this is the backstop
      const backstop = setTimeout(() => reject(new Error(`load run "${job.target}" did not end within ${job.maxSeconds + 30} s`)), (job.maxSeconds + 30) * 1000);
      const done = (fn: () => void): void => {
        clearTimeout(backstop);
        this.worker.off('message', onMessage);
        this.worker.off('error', onError);
        fn();
      };
      const onMessage = (reply: LoadReply): void =>
        done(() => {
          if ('error' in reply) return reject(new Error(`load thread: ${reply.error}`));
          reply.figures.serverEventLoopUtilization = round(perfHooks.eventLoopUtilization(elu0).utilization, 3);
          reply.figures.cpuCores = cpuCores(cpu0, threadCpu(), (performance.now() - wall0) / 1000, reply.tid);
          loopDelay.disable();
          const written = writtenBytes() - io0;
          reply.figures.diskWritesPerAckKb = reply.figures.acknowledged ? round(written / reply.figures.acknowledged / 1024, 1) : 0;
          reply.figures.serverLoopDelayMs = { p50: round(loopDelay.percentile(50) / 1e6, 1), p99: round(loopDelay.percentile(99) / 1e6, 1), max: round(loopDelay.max / 1e6, 1) };
          resolve(reply);
        });
      const onError = (err: Error): void => done(() => reject(err));
      this.worker.on('message', onMessage);
      this.worker.on('error', onError);
      this.worker.postMessage(job);
    });
  }

  async stop(): Promise<void> {
    await this.worker.terminate();
  }
}

/** A warm-up (JIT, SQLite page cache) with a tenth of the connections; its acks are kept. */
async function warmUp(loader: LoadThread, o: Options, target: string, url: string, acks: Ack[]): Promise<void> {
  if (o.warmup === 0) return;
  const connections = Math.max(1, Math.min(Math.ceil(o.connections / 10), o.warmup));
  const w = await loader.run({ target: `${target} warm-up`, url, connections, amount: Math.max(o.warmup, connections), maxSeconds: o.maxSeconds });
  acks.push(...w.acks);
}

/** The spike: `connections` clients in a closed loop, each sending its next notebook when answered. */
async function spike(loader: LoadThread, o: Options, target: string, url: string, acks: Ack[]): Promise<LoadFigures> {
  const m = await loader.run({ target, url, connections: o.connections, amount: o.amount, maxSeconds: o.maxSeconds });
  acks.push(...m.acks);
  return m.figures;
}

/** Paced: `paced` notebooks a second, evenly, for `pacedSeconds`. */
async function paced(loader: LoadThread, o: Options, target: string, url: string, acks: Ack[]): Promise<LoadFigures> {
  const m = await loader.run({ target, url, connections: o.paced, amount: o.paced * o.pacedSeconds, maxSeconds: Math.max(o.maxSeconds, o.pacedSeconds + 30), rate: o.paced });
  acks.push(...m.acks);
  return m.figures;
}

function median(xs: number[]): number {
  const v = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

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
        assignments: [{ id: 'lab01', aliases: ['1'], section: '1', tests: path.join(root, 'config/example/lab01/tests'), files: ['data.csv'], policy: 'otter' }],
      },
    ],
  };
  const file = path.join(dir, 'gofer.yaml');
  writeFileSync(file, stringify(raw));
  return { dir, config: loadConfig(file, {}) };
}

async function createTokens(config: Config, users: number): Promise<string[]> {
  const db = createDb(config, {});
  try {
    await migrate(db);
    const store = new ApiTokenStore(db, systemClock);
    const tokens: string[] = [];
    for (let u = 0; u < users; u++) tokens.push(await store.create(learner(u, users), 'bench:intake'));
    return tokens;
  } finally {
    await db.destroy();
  }
}

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

/** Counts the stopped service's rows against what was acknowledged (warm-up included). */
async function count(config: Config, acks: Ack[], text: (seq: number) => string, users: number): Promise<Count> {
  const db = createDb(config, {});
  try {
    const rows = (await db.raw('SELECT s.id, s.owner, s.sha256, length(n.notebook) AS bytes FROM submissions s LEFT JOIN submission_notebooks n ON n.submission_id = s.id')) as Array<{ id: string; owner: string; sha256: string; bytes: number }>;
    const one = async (sql: string): Promise<number> => Number(((await db.raw(sql)) as Array<{ n: number }>)[0]?.n ?? 0);
    const gradingJobs = await one('SELECT COUNT(*) AS n FROM grading_jobs');
    const duplicated = await one('SELECT COALESCE(SUM(n - 1), 0) AS n FROM (SELECT COUNT(*) AS n FROM submissions GROUP BY owner, sha256 HAVING COUNT(*) > 1)');
    const withoutJob = await one('SELECT COUNT(*) AS n FROM submissions s WHERE NOT EXISTS (SELECT 1 FROM grading_jobs j WHERE j.submission_id = s.id)');
    const severalJobs = await one('SELECT COUNT(*) AS n FROM (SELECT submission_id FROM grading_jobs GROUP BY submission_id HAVING COUNT(*) > 1)');

    const byId = new Map(rows.map((r) => [r.id, r]));
    const ids = new Set<string>();
    let lost = 0;
    let notIntact = 0;
    for (const [seq, id] of acks) {
      if (id === null || ids.has(id)) continue;
      ids.add(id);
      const row = byId.get(id);
      if (!row) {
        lost++;
        continue;
      }
      const nb = text(seq);
      if (row.owner !== learner(seq, users) || row.sha256 !== createHash('sha256').update(nb).digest('hex') || Number(row.bytes) !== nb.length) notIntact++;
    }
    return {
      acknowledged: acks.length,
      acknowledgedIds: ids.size,
      acknowledgedWithoutId: acks.filter(([, id]) => id === null).length,
      acknowledgedAsDuplicate: acks.filter(([, , duplicate]) => duplicate).length,
      submissions: rows.length,
      gradingJobs,
      lost,
      duplicated,
      notIntact,
      storedUnacknowledged: rows.filter((r) => !ids.has(r.id)).length,
      submissionsWithoutJob: withoutJob,
      submissionsWithSeveralJobs: severalJobs,
    };
  } finally {
    await db.destroy();
  }
}

function describe(f: LoadFigures): string {
  const codes = Object.entries(f.statusCodes)
    .map(([c, n]) => `${c}×${n}`)
    .join(' ');
  const pc = (p: Percentiles): string => `p50 ${p.p50}, p99 ${p.p99}, max ${p.max} (n ${p.n})`;
  return [
    `  ${f.target}: ${f.acknowledged}/${f.sent} acknowledged in ${f.seconds} s = ${f.perSecond} req/s` +
      `${f.offeredPerSecond ? ` (offered ${f.offeredPerSecond}/s)` : ''}${f.stoppedAtMaxSeconds ? ' (STOPPED at --max-seconds)' : ''}`,
    `    latency ms: p50 ${f.latencyMs.p50}, p90 ${f.latencyMs.p90}, p99 ${f.latencyMs.p99}, p99.9 ${f.latencyMs.p99_9}, max ${f.latencyMs.max}, mean ${f.latencyMs.mean}`,
    `    first request on each connection ms: ${pc(f.firstOnConnectionMs)}; keep-alive requests ms: ${pc(f.keepAliveMs)}`,
    `    non-2xx ${f.non2xx}, errors ${f.errors}, timeouts ${f.timeouts}; status codes: ${codes || 'none'}; server thread busy ${Math.round((f.serverEventLoopUtilization ?? 0) * 100)}%` +
      (f.serverLoopDelayMs ? `, its event-loop delay ms p50 ${f.serverLoopDelayMs.p50}, p99 ${f.serverLoopDelayMs.p99}, max ${f.serverLoopDelayMs.max}` : ''),
    `    CPU cores in use: ${Object.entries(f.cpuCores ?? {}).map(([k, v]) => `${k} ${v}`).join(', ') || 'not measured'}; ` +
      `disk writes per acknowledgement ${f.diskWritesPerAckKb ?? '?'} KB`,
  ].join('\n');
}

async function main(): Promise<void> {
  const o = options();
  // Nothing may outlive this: each load run is bounded, and so is the whole bench.
  const runs = 2 * o.rounds + 2 + (o.paced > 0 ? 2 : 0);
  const hardLimitMs = (runs * (Math.max(o.maxSeconds, o.pacedSeconds) + 30) + 120) * 1000;
  setTimeout(() => {
    console.error(`bench:intake: still running after ${hardLimitMs / 1000} s; giving up`);
    process.exit(1);
  }, hardLimitMs).unref();

  const template = notebookTemplate(o.kb);
  const notebookBytes = template.text(0).length;
  const { dir, config } = writeBenchConfig();
  const cleanups: Array<() => Promise<void>> = [];
  try {
    console.log(
      `bench:intake — spike: ${o.connections} connections in a closed loop, ${o.amount} requests (≤ ${o.maxSeconds} s) per target and round, ` +
        `${o.rounds} rounds after a ${o.warmup}-request warm-up; ${o.paced > 0 ? `paced: ${o.paced}/s evenly for ${o.pacedSeconds} s` : 'no paced run'}; notebook ${(notebookBytes / 1024).toFixed(1)} KB; ${o.users} learners; ` +
        `node ${process.version}, ${availableParallelism()} × ${cpus()[0]?.model ?? 'cpu'}`,
    );
    const tokens = await createTokens(config, o.users);
    const loader = new LoadThread({ head: template.head, tail: template.tail, tokens });
    cleanups.push(() => loader.stop());

    // The bare handler and Gofer serve side by side on this thread; the rounds alternate which
    // goes first, and the medians are compared, so drift and noise fall on both alike.
    const baseline = await startBaseline();
    cleanups.push(baseline.stop);
    const service = await run({ config, log: silentLogger(), http: true, workers: 0, env: {} });
    cleanups.push(service.stop);
    const BARE = 'baseline (express.json only)';
    const GOFER = 'Gofer (POST /services/gofer/)';
    const acks: Ack[] = [];
    await warmUp(loader, o, BARE, baseline.url, []);
    await warmUp(loader, o, GOFER, service.url!, acks);
    const bares: LoadFigures[] = [];
    const gofers: LoadFigures[] = [];
    for (let r = 1; r <= o.rounds; r++) {
      const order: Array<() => Promise<void>> = [
        async () => void bares.push(await spike(loader, o, `${BARE}, round ${r}`, baseline.url, [])),
        async () => void gofers.push(await spike(loader, o, `${GOFER}, round ${r}`, service.url!, acks)),
      ];
      if (r % 2 === 0) order.reverse();
      for (const step of order) await step();
      console.log(describe(bares[r - 1]!));
      console.log(describe(gofers[r - 1]!));
    }
    let pacedBare: LoadFigures | undefined;
    let pacedGofer: LoadFigures | undefined;
    if (o.paced > 0) {
      pacedBare = await paced(loader, o, `${BARE}, paced`, baseline.url, []);
      console.log(describe(pacedBare));
      pacedGofer = await paced(loader, o, `${GOFER}, paced`, service.url!, acks);
      console.log(describe(pacedGofer));
    }
    await cleanups.pop()!();
    await cleanups.pop()!();

    // the count, on the stopped service's database
    const c = await count(config, acks, template.text, o.users);
    const bareRate = median(bares.map((f) => f.perSecond));
    const goferRate = median(gofers.map((f) => f.perSecond));
    const ratio = round(goferRate / bareRate, 3);
    const spikeP99 = median(gofers.map((f) => f.latencyMs.p99));
    const checks = {
      p99Spike: spikeP99 <= TARGET.p99Ms,
      ...(pacedGofer ? { p99Paced: pacedGofer.latencyMs.p99 <= TARGET.p99Ms && pacedGofer.acknowledged === pacedGofer.sent } : {}),
      throughput: ratio >= TARGET.throughputRatio,
      lost: c.lost === 0 && c.acknowledgedWithoutId === 0,
      duplicated: c.duplicated === 0 && c.acknowledgedAsDuplicate === 0 && c.submissionsWithSeveralJobs === 0,
      intact: c.notIntact === 0 && c.submissionsWithoutJob === 0 && c.gradingJobs === c.submissions,
    };
    const mark = (ok: boolean): string => (ok ? 'PASS' : 'FAIL');
    const lat = (fs: LoadFigures[], p: 'p50' | 'p99'): string => `${median(fs.map((f) => f.latencyMs[p]))}`;
    console.log(
      `  medians of ${o.rounds} spike rounds: baseline ${bareRate} req/s (p50 ${lat(bares, 'p50')} ms, p99 ${lat(bares, 'p99')} ms); ` +
        `Gofer ${goferRate} req/s (p50 ${lat(gofers, 'p50')} ms, p99 ${lat(gofers, 'p99')} ms); throughput ratio Gofer/baseline ${ratio}`,
    );
    console.log(
      `  database: ${c.submissions} submissions, ${c.gradingJobs} grading jobs; ${c.acknowledgedIds} distinct acknowledged ids ` +
        `(${c.acknowledged} 2xx incl. warm-up, ${c.acknowledgedAsDuplicate} marked duplicate, ${c.acknowledgedWithoutId} without id); ` +
        `stored but unacknowledged ${c.storedUnacknowledged}; without job ${c.submissionsWithoutJob}, with several jobs ${c.submissionsWithSeveralJobs}`,
    );
    console.log(`  lost ${c.lost} (acknowledged - stored), duplicated ${c.duplicated} (same owner and sha256 stored twice), not intact ${c.notIntact}`);
    console.log(
      `  targets: p99 in the spike ${spikeP99} ms ≤ ${TARGET.p99Ms} ${mark(checks.p99Spike)}` +
        (pacedGofer ? `; p99 paced at ${o.paced}/s ${pacedGofer.latencyMs.p99} ms ≤ ${TARGET.p99Ms} ${mark(checks.p99Paced!)}` : '') +
        `; throughput ratio ${ratio} ≥ ${TARGET.throughputRatio} ${mark(checks.throughput)}; ` +
        `lost 0 ${mark(checks.lost)}; duplicated 0 ${mark(checks.duplicated)}; stored intact with one job ${mark(checks.intact)}`,
    );
    console.log(
      JSON.stringify({
        bench: 'intake',
        node: process.version,
        cpus: availableParallelism(),
        connections: o.connections,
        amount: o.amount,
        rounds: o.rounds,
        paced: o.paced,
        warmup: o.warmup,
        notebookBytes,
        users: o.users,
        baseline: bares,
        gofer: gofers,
        pacedBaseline: pacedBare ?? null,
        pacedGofer: pacedGofer ?? null,
        medians: { baselinePerSecond: bareRate, goferPerSecond: goferRate, goferSpikeP99Ms: spikeP99 },
        throughputRatio: ratio,
        count: c,
        targets: TARGET,
        pass: { ...checks, all: Object.values(checks).every(Boolean) },
      }),
    );
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    if (o.keep) console.error(`bench:intake: kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

if (isMainThread) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error('bench:intake failed:', err instanceof Error ? (err.stack ?? err.message) : err);
      process.exit(1);
    },
  );
} else {
  loadThread(workerData as LoadSetup);
}
