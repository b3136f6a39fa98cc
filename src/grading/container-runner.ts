import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type Docker from 'dockerode';
import tar from 'tar-stream';
import type { GradingLimits, Policy } from '../config/schema.js';
import { InfrastructureError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { JobFile } from './assignment-files.js';
import { harnessOutputSchema, type HarnessOutput } from './result.js';
import { poolKey, RecentModules, WarmPool, type PoolOptions, type PoolStats } from './warm-pool.js';

/** Every container Gofer creates carries this label, so leftovers can be found and removed. */
export const CONTAINER_LABEL = 'org.gofer.grading';
/** Which process made the container: "<host>/<pid>". */
export const OWNER_LABEL = 'org.gofer.owner';
const OWNER = `${hostname()}/${process.pid}`;
/** A pre-started container, started before it had a job (its org.gofer.job label says "pool"). */
export const POOL_LABEL = 'org.gofer.pool';
/** An image's modules for pre-started containers to import, comma-separated (docker/Dockerfile sets it). */
export const PRELOAD_LABEL = 'org.gofer.preload';
/** What a pre-started harness prints on its result stream once its kernel is ready. */
const READY_LINE = 'GOFER-READY\n';
/** How long stop() waits for the removals under way. */
const STOP_REMOVALS_MS = 5000;
/** The wait before a failed removal is tried again. */
const REMOVE_RETRY_MS = 2000;
/** How long a pre-started container may take to become ready before it counts as broken. */
const READY_MS = 90_000;
/** A container older than this is a leftover whoever made it (no grading runs this long). */
const LEFTOVER_AGE_MS = 3 * 3600 * 1000;

/** The harness source, read once; it is sent into every container (never baked into images). */
const HARNESS_PATH = fileURLToPath(new URL('../../../docker/harness/harness.py', import.meta.url));

/** Gofer's seccomp profile (docker/seccomp.json), read once and given to every grading container. */
const SECCOMP_PATH = fileURLToPath(new URL('../../../docker/seccomp.json', import.meta.url));

/** Reads the harness from stdin: a line with its byte length, then the source (see docs/harness-protocol.md). */
const BOOT = "import sys;b=sys.stdin.buffer;n=int(b.readline());HARNESS_SOURCE=b.read(n);exec(compile(HARNESS_SOURCE,'harness.py','exec'))";

/** /dev/shm of a grading container (Docker's own default, set explicitly). */
const SHM_BYTES = 64 * 1024 * 1024;

/** The container's uid for learner code. */
const LEARNER_UID = 1000;

/** Deadline of one engine call (create, attach, start, inspect, kill, remove, ping). */
export const ENGINE_CALL_MS = 20_000;
/** How often a running container is inspected: the watch that does not trust `wait` alone. */
const WATCH_MS = 2000;

/**
 * The engine failed (it does not answer, a call missed its deadline, a connection dropped): not
 * the learner's doing and not the job's. The job goes back to the queue for another host
 * without counting an attempt.
 */
export class EngineError extends InfrastructureError {}

export interface RunnerOptions {
  harnessSource?: Buffer;
  /** Deadline of each engine call (default ENGINE_CALL_MS). */
  callMs?: number;
  /** How often a running container is inspected (default WATCH_MS). */
  watchMs?: number;
  /** Pre-started containers (src/grading/warm-pool.ts); without it, or with floor 0, every job starts a fresh one. */
  pool?: PoolOptions;
}

/** What a container is started with, whatever job it is given: pools are keyed by it. */
export interface ContainerSpec {
  image: string;
  limits: Pick<GradingLimits, 'memoryMb' | 'cpus' | 'pids' | 'tmpfsMb' | 'outputLimitKb'>;
}

export interface ContainerJob extends ContainerSpec {
  policy: Policy;
  notebook: Buffer;
  tests: JobFile[];
  supportFiles: JobFile[];
  limits: ContainerSpec['limits'] & Pick<GradingLimits, 'timeoutSeconds'>;
  /** Shown in the container's labels, for tracing (a pre-started container was labelled before it had a job). */
  jobId?: string;
  /** Aborting kills the container and rejects with GradingAbortedError (used at shutdown). */
  signal?: AbortSignal;
}

/** Grading was stopped from outside (shutdown, lost lease); the job should be given back. */
export class GradingAbortedError extends Error {
  constructor() {
    super('grading was aborted');
    this.name = 'GradingAbortedError';
  }
}

/** The harness's answer, or what the runner learned when there was none. */
export type ContainerOutcome =
  | { kind: 'harness'; output: HarnessOutput; oomKilled: boolean; durationMs: number }
  | { kind: 'wall_clock'; durationMs: number }
  | { kind: 'oom_no_result'; durationMs: number };

/**
 * Runs the harness in one locked-down container per submission and removes the container on
 * every path. Files go in through stdin and the result comes out on stdout, so a remote engine
 * (DOCKER_HOST) works as well as the local socket.
 */
export class ContainerRunner {
  private readonly harness: Buffer;
  private readonly seccomp: string;
  private readonly callMs: number;
  private readonly watchMs: number;
  /** Containers this runner is using now (the pool's among them): everything else it made is a leftover. */
  private readonly live = new Set<string>();
  /** Removals under way (not awaited by the job they ended). */
  private readonly removing = new Set<Promise<void>>();
  private readonly preloads = new Map<string, Promise<string[]>>();
  private readonly pool: WarmPool<Warm> | undefined;
  /** Which of an image's preload modules recent jobs named: what the next pre-started containers import. */
  private readonly named = new RecentModules();

  constructor(
    private readonly docker: Docker,
    private readonly log: Logger,
    options: RunnerOptions = {},
  ) {
    this.harness = options.harnessSource ?? readFileSync(HARNESS_PATH);
    this.seccomp = JSON.stringify(JSON.parse(readFileSync(SECCOMP_PATH, 'utf8')));
    this.callMs = options.callMs ?? ENGINE_CALL_MS;
    this.watchMs = options.watchMs ?? WATCH_MS;
    if (options.pool && options.pool.floor > 0) {
      this.pool = new WarmPool<Warm>({
        ...options.pool,
        log,
        start: (spec, signal) => this.prestart(spec, options.pool?.readyMs ?? READY_MS, signal),
        alive: (warm) => !warm.closed,
        discard: (warm) => this.dispose(warm.container),
      });
    }
  }

  /** Resolves when the engine answers a ping within the deadline; rejects with an EngineError. */
  async ping(): Promise<void> {
    await this.call('answer a ping', () => this.docker.ping());
  }

  /** One engine call with a deadline: no answer in time, or no answer at all, is an EngineError; an HTTP error answer passes through. */
  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new EngineError(`The Docker engine did not ${what} within ${this.callMs / 1000} s.`)), this.callMs);
    });
    try {
      return await Promise.race([fn(), deadline]);
    } catch (err) {
      if (err instanceof EngineError || (err as { statusCode?: number }).statusCode) throw err;
      throw new EngineError(`The Docker engine did not ${what}: ${(err as Error).message}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  /** Fails with an EngineError naming what to do when the engine or image is missing. */
  async checkReady(image: string): Promise<void> {
    try {
      await this.ping();
    } catch (err) {
      throw new EngineError(
        `The Docker engine does not answer (${(err as Error).message}). Start it (see README: "A Docker engine") or set DOCKER_HOST.`,
        { cause: err },
      );
    }
    try {
      await this.call('inspect the grader image', () => this.docker.getImage(image).inspect());
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) {
        throw new EngineError(`The grader image ${image} is missing. ${missingImageHint(image)}`);
      }
      throw new EngineError(`Cannot inspect the image ${image}: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * Removes containers left by a Gofer process that died (on this host: its pid is gone; from
   * anywhere: older than any grading can run); returns how many. Containers of live processes
   * sharing the engine are left alone.
   */
  async removeLeftovers(): Promise<number> {
    const all = await this.call('list containers', () => this.docker.listContainers({ all: true, filters: { label: [CONTAINER_LABEL] } }));
    const leftovers = all.filter((c) => {
      const owner = c.Labels[OWNER_LABEL] ?? '';
      const [host, pid] = owner.split('/');
      const old = Date.now() - c.Created * 1000 > LEFTOVER_AGE_MS;
      // this process's own containers of past jobs (their engine failed before they were removed)
      const ownPast = owner === OWNER && !this.live.has(c.Id);
      return old || ownPast || (host === hostname() && !isAlive(Number(pid)));
    });
    await Promise.all(
      leftovers.map((c) =>
        this.call('remove a leftover container', () => this.docker.getContainer(c.Id).remove({ force: true })).catch((err: { statusCode?: number }) => {
          if (err.statusCode !== 404 && err.statusCode !== 409) throw err;
        }),
      ),
    );
    if (leftovers.length) this.log.warn('removed leftover grading containers', { count: leftovers.length });
    return leftovers.length;
  }

  /**
   * Grades one job in a container of its own: a pre-started one from the pool when one is ready
   * (it has held no job; it is given this one and no other), else a fresh one. Either way the
   * container is removed after this job, on every path.
   */
  async run(job: ContainerJob): Promise<ContainerOutcome> {
    const nonce = randomBytes(16).toString('hex');
    const archive = await this.archive(job, nonce);
    const started = Date.now();
    const { limits } = job;
    // The harness gets the budget twice (notebook, then tests), kernel start-up (up to 60 s) and a
    // little grace; past that the container is killed from here, whatever learner code does inside.
    const wallMs = (2 * limits.timeoutSeconds + 70) * 1000;

    const warm = this.pool?.take(job);
    if (this.pool) void this.preloadOf(job.image).then((candidates) => this.named.record(poolKey(job), namedModules(candidates, job)), () => undefined);
    const launched = warm ?? (await this.launch(job, { job: job.jobId ?? nonce.slice(0, 8) }));
    const { container, stream, stdout, stderr } = launched;
    try {
      stream.end(warm ? archive : Buffer.concat([this.header, archive]));
      const running = Date.now();

      // The result line ends the job as soon as it is whole: the container's exit and teardown are
      // not waited for (removal kills what is left). Only a kernel that died waits for the
      // engine's word on the OOM killer.
      const stopWatch = new AbortController();
      const watching = this.watch(container, { wallMs, running, signal: job.signal, stop: stopWatch.signal, ...(warm ? { startedAt: warm.startedAt } : {}) });
      const first = await Promise.race([watching, stdout.seenLine(`GOFER-RESULT ${nonce} `).then(() => undefined)]);
      if (!first) {
        const output = findResult(stdout.text(), nonce);
        if (output && output.status !== 'kernel_died') {
          stopWatch.abort();
          watching.catch(() => undefined);
          if (output.status !== 'graded') this.withoutGrade(job, output, stderr);
          return { kind: 'harness', output, oomKilled: false, durationMs: Date.now() - started };
        }
      }
      const end = first ?? (await watching);
      if (end.kind === 'aborted') {
        await this.call('kill a grading container', () => container.kill()).catch(() => undefined);
        throw new GradingAbortedError();
      }
      const durationMs = Date.now() - started;
      if (end.kind === 'wall_clock') {
        this.log.warn('grading container hit the wall-clock limit; killing it', { wallMs, ranMs: end.ranMs, job: job.jobId });
        await this.call('kill a grading container', () => container.kill()).catch((err: { statusCode?: number }) => {
          // 409: it ended meanwhile. Anything else: the engine failed, and the limit proves nothing.
          if (err.statusCode !== 409) throw err;
        });
        return { kind: 'wall_clock', durationMs };
      }
      // Let the attach stream deliver what the container wrote before it exited.
      await Promise.race([launched.ended, sleep(2000)]);
      const output = findResult(stdout.text(), nonce);
      if (output && output.status !== 'graded') this.withoutGrade(job, output, stderr);
      if (output) return { kind: 'harness', output, oomKilled: end.oomKilled, durationMs };
      if (end.oomKilled) return { kind: 'oom_no_result', durationMs };
      if (!launched.closed || end.exitCode === null) throw new EngineError('The Docker engine dropped the grading container\'s output stream.');
      throw new InfrastructureError(
        `The grading harness ended without a result (exit status ${end.exitCode}). Its last words: ${stderr.tail(600) || '(none)'}`,
      );
    } catch (err) {
      if (err instanceof InfrastructureError || err instanceof GradingAbortedError) throw err;
      throw engineError('run the grading container', job.image, err);
    } finally {
      // not awaited: the result does not wait for the engine to tear the container down
      this.dispose(container);
    }
  }

  /**
   * The harness's diagnostics say why (a protocol the kernel broke, an agent it disabled). They
   * are for the logs only: they may quote text the learner's code made.
   */
  private withoutGrade(job: ContainerJob, output: HarnessOutput, stderr: CappedBuffer): void {
    this.log.warn('grading ended without a grade', { job: job.jobId, status: output.status, diagnostics: stderr.tail(2000), note: 'diagnostics may contain learner-controlled text' });
  }

  /**
   * Creates, attaches to and starts a locked-down container; writes nothing to it yet. With
   * `prestart`, the harness will import those modules and start the kernel before it reads a job.
   */
  private async launch(spec: ContainerSpec, o: { job: string; prestart?: string[] }): Promise<Launched> {
    const { limits } = spec;
    const memory = limits.memoryMb * 1024 * 1024;
    let container: Docker.Container;
    try {
      container = await this.call('create a grading container', () => this.docker.createContainer({
        Image: spec.image,
        Cmd: ['python3', '-c', BOOT],
        User: '0',
        WorkingDir: '/tmp',
        Env: [
          'PYDEVD_DISABLE_FILE_VALIDATION=1',
          'PYTHONDONTWRITEBYTECODE=1',
          'HOME=/tmp',
          ...(o.prestart ? [`GOFER_PRESTART=${o.prestart.join(',')}`] : []),
        ],
        Labels: {
          [CONTAINER_LABEL]: '1',
          [OWNER_LABEL]: OWNER,
          'org.gofer.job': o.job,
          ...(o.prestart ? { [POOL_LABEL]: '1' } : {}),
        },
        AttachStdin: true,
        AttachStdout: true,
        AttachStderr: true,
        OpenStdin: true,
        StdinOnce: true,
        Tty: false,
        NetworkDisabled: true,
        HostConfig: {
          NetworkMode: 'none',
          Memory: memory,
          MemorySwap: memory,
          NanoCpus: Math.round(limits.cpus * 1e9),
          PidsLimit: limits.pids,
          ReadonlyRootfs: true,
          Tmpfs: {
            '/gofer': 'rw,nosuid,nodev,noexec,size=128m,mode=0700',
            '/tmp': `rw,nosuid,nodev,size=${limits.tmpfsMb}m,mode=1777`,
          },
          CapDrop: ['ALL'],
          // Only to drop from root to the learner's uid; no-new-privileges keeps it one-way.
          CapAdd: ['SETUID', 'SETGID'],
          SecurityOpt: ['no-new-privileges', `seccomp=${this.seccomp}`],
          // No core dumps; no single file larger than the scratch space; /dev/shm sized explicitly.
          Ulimits: [
            { Name: 'nofile', Soft: 4096, Hard: 4096 },
            { Name: 'core', Soft: 0, Hard: 0 },
            { Name: 'fsize', Soft: limits.tmpfsMb * 1024 * 1024, Hard: limits.tmpfsMb * 1024 * 1024 },
          ],
          ShmSize: SHM_BYTES,
          LogConfig: { Type: 'none', Config: {} },
        },
      }));
    } catch (err) {
      throw engineError('create a grading container', spec.image, err);
    }
    this.live.add(container.id);
    try {
      const stream = (await this.call('attach to a grading container', () =>
        container.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true }),
      )) as NodeJS.ReadWriteStream;
      const stdout = new CappedBuffer(limits.outputLimitKb * 1024);
      const stderr = new CappedBuffer(64 * 1024);
      let closed = false;
      const ended = new Promise<void>((resolve) => {
        const close = (): void => {
          closed = true;
          resolve();
        };
        stream.on('end', close);
        stream.on('close', close);
        stream.on('error', close);
      });
      container.modem.demuxStream(stream, stdout, stderr);
      await this.call('start a grading container', () => container.start());
      return {
        container,
        stream,
        stdout,
        stderr,
        ended,
        get closed() {
          return closed;
        },
      };
    } catch (err) {
      this.dispose(container);
      throw engineError('start a grading container', spec.image, err);
    }
  }

  /**
   * A container for the pool: the harness is sent in and boots, imports the modules the image
   * lists (its org.gofer.preload label), starts the evaluator and the kernel, says GOFER-READY
   * and waits for a job on stdin. It holds nothing of any job until run() gives it one.
   */
  private async prestart(spec: ContainerSpec, readyMs: number, signal: AbortSignal): Promise<Warm> {
    const modules = this.named.choose(poolKey(spec), await this.preloadOf(spec.image));
    const started = Date.now();
    const launched = await this.launch(spec, { job: 'pool', prestart: modules });
    launched.stream.write(this.header);
    // a shutdown does not wait for a container to become ready
    let onStop = (): void => undefined;
    const stopped = new Promise<false>((resolve) => {
      onStop = () => resolve(false);
      if (signal.aborted) onStop();
      else signal.addEventListener('abort', onStop, { once: true });
    });
    const ready = await Promise.race([launched.stdout.seen(READY_LINE), launched.ended.then(() => false), sleep(readyMs).then(() => false), stopped]).finally(() =>
      signal.removeEventListener('abort', onStop),
    );
    if (!ready) {
      this.dispose(launched.container);
      throw new InfrastructureError(
        signal.aborted
          ? 'The pool stopped before a pre-started grading container was ready.'
          : launched.closed
            ? `A pre-started grading container ended before it was ready. Its last words: ${launched.stderr.tail(600) || '(none)'}`
            : `A pre-started grading container was not ready within ${readyMs / 1000} s.`,
      );
    }
    // the run the watch holds it to (an engine restart would have restarted or ended it)
    const state = await this.call('inspect a grading container', () => launched.container.inspect()).catch((err: unknown) => {
      this.dispose(launched.container);
      throw err;
    });
    this.log.debug('a pre-started grading container is ready', { image: spec.image, ms: Date.now() - started });
    return Object.assign(launched, { startedAt: state.State.StartedAt });
  }

  /** The modules an image asks pre-started containers to import (label org.gofer.preload), read once. */
  private preloadOf(image: string): Promise<string[]> {
    let known = this.preloads.get(image);
    if (!known) {
      known = this.call('inspect the grader image', () => this.docker.getImage(image).inspect()).then(
        (info) => parsePreload(info.Config?.Labels?.[PRELOAD_LABEL]),
        (err: unknown) => {
          this.preloads.delete(image);
          throw engineError('inspect the grader image', image, err);
        },
      );
      this.preloads.set(image, known);
    }
    return known;
  }

  /**
   * Removes a container in the background, trying three times (the job's result no longer waits
   * on its exit, so what is left in it runs until it is removed); one that still cannot be removed
   * is swept when the engine answers again.
   */
  private dispose(container: Docker.Container): void {
    this.live.delete(container.id);
    const remove = async (): Promise<void> => {
      for (let attempt = 1; ; attempt++) {
        try {
          await this.call('remove a grading container', () => container.remove({ force: true }));
          return;
        } catch (err) {
          const e = err as { statusCode?: number; message?: string };
          if (e.statusCode === 404) return;
          if (attempt === 3) {
            this.log.warn('could not remove a grading container', { id: container.id, error: e.message });
            return;
          }
          await sleep(REMOVE_RETRY_MS);
        }
      }
    };
    const removal = remove().finally(() => this.removing.delete(removal));
    this.removing.add(removal);
  }

  /** Registers an image and limits whose jobs the pool keeps pre-started containers for (no-op without a pool). */
  keepWarm(spec: ContainerSpec): void {
    this.pool?.keep(spec);
  }

  /** The pool's size, per image and limits, and how many jobs found a container ready. */
  poolStats(): PoolStats {
    return this.pool?.stats() ?? { keys: [], hits: 0, misses: 0 };
  }

  /**
   * Resolves when every container this runner removed is gone from the engine and its pool is
   * full with nothing starting; returns the ids of the pool's ready containers (none had a job).
   */
  async settled(): Promise<Set<string>> {
    await this.pool?.settled();
    while (this.removing.size) await Promise.all([...this.removing]);
    return new Set((this.pool?.readyItems() ?? []).map((w) => w.container.id));
  }

  /**
   * Removes the pool's containers (at shutdown), waiting for the removals at most 5 s: an engine
   * that does not answer leaves them to the sweep, not to a shutdown the hub cuts short.
   */
  async stop(): Promise<void> {
    await this.pool?.stop();
    const removals = (async () => {
      while (this.removing.size) await Promise.all([...this.removing]);
    })();
    await Promise.race([removals, sleep(STOP_REMOVALS_MS)]);
  }

  /** The harness as the container's BOOT reads it: its byte length on a line, then the source. */
  private get header(): Buffer {
    return Buffer.concat([Buffer.from(`${this.harness.length}\n`), this.harness]);
  }

  /**
   * Waits for the container to end, trusting neither `wait` alone (docker-modem never settles a
   * wait whose connection drops after the 200 header) nor the clock alone: the container is
   * inspected every few seconds, and an engine that stops answering is an EngineError. The
   * wall-clock limit ends the job only when the last inspect, just now, saw the container still
   * running the learner's code, started that long ago.
   */
  private async watch(
    container: Docker.Container,
    o: { wallMs: number; running: number; signal: AbortSignal | undefined; startedAt?: string; stop?: AbortSignal },
  ): Promise<{ kind: 'exited'; exitCode: number | null; oomKilled: boolean } | { kind: 'wall_clock'; ranMs: number } | { kind: 'aborted' }> {
    let waited: { StatusCode: number } | undefined;
    // wait() is kept for its speed (it answers the moment the container exits); the inspect loop decides.
    let wake: () => void = () => undefined;
    // set when wait() answers or fails: the next look comes at once, not after a sleep
    let look = false;
    (container.wait() as Promise<{ StatusCode: number }>).then(
      (r) => {
        waited = r;
        look = true;
        wake();
      },
      () => {
        look = true;
        wake();
      },
    );
    const onAbort = (): void => wake();
    o.signal?.addEventListener('abort', onAbort);
    o.stop?.addEventListener('abort', onAbort);
    let startedAt = o.startedAt;
    try {
      for (;;) {
        // Sleep first: a short job has ended by the first look, and one inspect then tells all.
        if (!look && !o.signal?.aborted) {
          const ranMs = Date.now() - o.running;
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, Math.max(0, Math.min(this.watchMs, o.wallMs - ranMs)));
            wake = () => {
              clearTimeout(t);
              resolve();
            };
          });
        }
        look = false;
        if (o.signal?.aborted || o.stop?.aborted) return { kind: 'aborted' };
        const state = (
          await this.call('inspect a grading container', () => container.inspect()).catch((err: unknown) => {
            if (err instanceof EngineError) throw err;
            throw new EngineError(`The grading container vanished from the Docker engine: ${(err as Error).message}`, { cause: err });
          })
        ).State;
        if (!state.Running) return { kind: 'exited', exitCode: waited?.StatusCode ?? state.ExitCode ?? null, oomKilled: state.OOMKilled };
        // the same run of the container all along (an engine restart would have restarted or ended it)
        startedAt ??= state.StartedAt;
        if (state.StartedAt !== startedAt) throw new EngineError('The Docker engine restarted the grading container.');
        const ranMs = Date.now() - o.running;
        if (ranMs >= o.wallMs) return { kind: 'wall_clock', ranMs };
      }
    } finally {
      o.signal?.removeEventListener('abort', onAbort);
      o.stop?.removeEventListener('abort', onAbort);
    }
  }

  /** The job's files as the harness reads them after its source: an uncompressed tar stream. */
  private async archive(job: ContainerJob, nonce: string): Promise<Buffer> {
    const pack = tar.pack();
    const jobJson = { nonce, policy: job.policy, timeoutSeconds: job.limits.timeoutSeconds, uid: LEARNER_UID };
    const entries: JobFile[] = [
      { name: 'job.json', content: Buffer.from(JSON.stringify(jobJson)) },
      { name: 'submission.ipynb', content: job.notebook },
      ...job.tests,
      ...job.supportFiles,
    ];
    const chunks: Buffer[] = [];
    const done = new Promise<void>((resolve, reject) => {
      pack.on('data', (c: unknown) => {
        chunks.push(c as Buffer);
      });
      pack.on('end', resolve);
      pack.on('error', reject);
    });
    for (const e of entries) pack.entry({ name: e.name, mode: 0o600, size: e.content.length }, e.content);
    pack.finalize();
    await done;
    return Buffer.concat(chunks);
  }
}

/** A started container: its attach stream, what it wrote, and whether the stream is still open. */
interface Launched {
  container: Docker.Container;
  stream: NodeJS.ReadWriteStream;
  stdout: CappedBuffer;
  stderr: CappedBuffer;
  /** Settles when the attach stream ends: the container exited, or the engine dropped it. */
  ended: Promise<void>;
  readonly closed: boolean;
}

/** A pre-started container, ready for one job; `startedAt` is the run the watch holds it to. */
type Warm = Launched & { startedAt: string };

/** The names a module goes by in notebooks and tests: its top-level name, and the usual alias. */
const ALIASES: Record<string, string[]> = { numpy: ['np'], pandas: ['pd'], matplotlib: ['mpl', 'plt'], scipy: ['sp'], seaborn: ['sns'] };

/** How much of a notebook is looked at for the modules it names: imports come first. */
const NAMED_SCAN_BYTES = 1024 * 1024;

/**
 * Which of `candidates` the job's notebook (its first megabyte) or tests name, by the module's
 * top-level name or its usual alias (np, pd, plt).
 */
export function namedModules(candidates: string[], job: Pick<ContainerJob, 'notebook' | 'tests'>): string[] {
  // the notebook is JSON: its line breaks are written \n, which would glue "\npd" into one word
  const notebook = job.notebook.subarray(0, NAMED_SCAN_BYTES).toString('latin1').replace(/\\[nrt]/g, ' ');
  const text = [notebook, ...job.tests.map((t) => t.content.toString('utf8'))].join('\n');
  return candidates.filter((m) => {
    const top = m.split('.')[0]!;
    const names = [top, ...(ALIASES[top] ?? [])].map((n) => n.replace(/[^\w]/g, ''));
    return new RegExp(`\\b(?:${names.join('|')})\\b`).test(text);
  });
}

/** "numpy, pandas,matplotlib.pyplot" as module names; anything else is left out. */
export function parsePreload(label: string | undefined): string[] {
  return (label ?? '')
    .split(',')
    .map((m) => m.trim())
    .filter((m) => /^[A-Za-z_][\w.]*$/.test(m));
}

/** Picks the result line carrying this job's nonce; learner code cannot know the nonce. */
export function findResult(stdout: string, nonce: string): HarnessOutput | undefined {
  const marker = `GOFER-RESULT ${nonce} `;
  const line = stdout.split('\n').find((l) => l.startsWith(marker));
  if (!line) return undefined;
  let data: unknown;
  try {
    data = JSON.parse(line.slice(marker.length));
  } catch {
    throw new InfrastructureError('The grading harness printed a result that is not JSON.');
  }
  const parsed = harnessOutputSchema.safeParse(data);
  if (!parsed.success) {
    throw new InfrastructureError(`The grading harness printed an invalid result: ${parsed.error.issues[0]?.message ?? ''}`);
  }
  return parsed.data;
}

/** What to do about a missing image: Gofer's own is built by `gofer image build`; a course's image by its own Dockerfile. */
export function missingImageHint(image: string): string {
  const [name, tag = 'latest'] = image.split(/:(?=[^/:]*$)/);
  if (name === 'gofer/grader') return `Build it with \`gofer image build${tag === 'latest' ? '' : ` --tag ${image}`}\`.`;
  return `It is not Gofer's own image: build it from the course's Dockerfile (\`docker build -t ${image} .\`, see docs/images.md) on every grading host, or correct the image name in the configuration.`;
}

/** An engine call failed: the engine's (image missing, server error, no answer) unless it rejected the request itself. */
function engineError(what: string, image: string, err: unknown): InfrastructureError {
  if (err instanceof InfrastructureError) return err;
  const e = err as { statusCode?: number; message?: string };
  if (e.statusCode === 404) return new EngineError(`Cannot ${what}: the image ${image} is missing. ${missingImageHint(image)}`, { cause: err });
  if (e.statusCode !== undefined && e.statusCode < 500) return new InfrastructureError(`Cannot ${what}: ${e.message ?? String(err)}`, { cause: err });
  return new EngineError(`Cannot ${what}: ${e.message ?? String(err)}`, { cause: err });
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

/** Keeps the last `limit` bytes written (the result line comes last; a flood must not fill memory). */
class CappedBuffer extends Writable {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly limit: number) {
    super();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    if (this.size > 2 * this.limit) {
      const kept = Buffer.concat(this.chunks).subarray(-this.limit);
      this.chunks = [kept];
      this.size = kept.length;
    }
    this.emit('chunk');
    cb();
  }
  text(): string {
    return Buffer.concat(this.chunks).subarray(-this.limit).toString('utf8');
  }
  /** Resolves with true once `marker` has been written (checked as each chunk arrives). */
  seen(marker: string): Promise<boolean> {
    return this.until((text) => text.includes(marker));
  }
  /** Resolves once a whole line starting with `prefix` has been written. */
  seenLine(prefix: string): Promise<boolean> {
    return this.until((text) => {
      const at = text.startsWith(prefix) ? 0 : text.indexOf(`\n${prefix}`);
      return at >= 0 && text.indexOf('\n', at + 1) > at;
    });
  }
  private until(test: (text: string) => boolean): Promise<boolean> {
    if (test(this.text())) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = (): void => {
        if (!test(this.text())) return;
        this.off('chunk', check);
        resolve(true);
      };
      this.on('chunk', check);
    });
  }
  tail(n: number): string {
    return this.text().slice(-n).trim();
  }
}
