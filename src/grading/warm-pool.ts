import { backoffMs } from '../lib/lease-queue.js';
import type { Logger } from '../lib/logger.js';
import type { PoolStats as PoolCounts } from '../lib/metrics.js';
import type { ContainerSpec } from './container-runner.js';

export interface PoolOptions {
  /** Ready containers kept for each image and limits, at least (0: no pool). */
  floor: number;
  /** And at most, however fast jobs arrive. */
  ceiling: number;
  /** A ready container that waited this long is replaced by a fresh one (default 15 minutes). */
  maxIdleMs?: number;
  /** How long a container may take to become ready (the runner's default: 90 s). */
  readyMs?: number;
}

/** What /metrics reads (lib/metrics.ts), with each pool's image and target size. */
export interface PoolStats extends PoolCounts {
  keys: Array<PoolCounts['keys'][number] & { image: string; target: number }>;
}

/** How far back arrivals count towards a pool's size. */
const RATE_WINDOW_MS = 60_000;
/** How often pools are tended: dead and aged containers replaced, sizes followed. */
const TEND_MS = 2000;
/** A failed start is tried again after this, doubled per failure (with jitter) up to MAX_RETRY_MS. */
const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 30_000;

interface Ready<T> {
  item: T;
  readyAt: number;
}

interface Pool<T> {
  key: string;
  spec: ContainerSpec;
  ready: Array<Ready<T>>;
  starting: number;
  /** When jobs asked for a container, over the last RATE_WINDOW_MS. */
  arrivals: number[];
  /** How long a container takes to become ready (a moving average). */
  warmMs: number;
  failures: number;
  retryAt: number;
}

/** The pool's key: what a container is started with (the time limit is the job's, not the container's). */
export function poolKey(spec: ContainerSpec): string {
  const l = spec.limits;
  return `${spec.image} mem=${l.memoryMb}m cpus=${l.cpus} pids=${l.pids} tmp=${l.tmpfsMb}m out=${l.outputLimitKb}k`;
}

/**
 * Containers started before jobs arrive, one pool per image and limits. Each container serves
 * one job and is removed by its runner; the pool only starts, holds and discards them. A pool
 * holds `floor` containers, more while jobs arrive faster than containers become ready (the
 * arrivals of the last minute times the time one takes to be ready), never more than `ceiling`.
 * A dead or aged one is discarded and replaced; a failed start is retried with back-off.
 */
export class WarmPool<T> {
  private readonly pools = new Map<string, Pool<T>>();
  private hits = 0;
  private misses = 0;
  private stopped = false;
  private readonly stopping = new AbortController();
  private readonly tending: NodeJS.Timeout;
  private readonly starts = new Set<Promise<void>>();
  private readonly now: () => number;

  constructor(
    private readonly o: PoolOptions & {
      log: Logger;
      /** Starts a container; `signal` aborts when the pool stops (its start should give up). */
      start(spec: ContainerSpec, signal: AbortSignal): Promise<T>;
      alive(item: T): boolean;
      discard(item: T): void;
      now?: () => number;
      tendMs?: number;
    },
  ) {
    this.now = o.now ?? Date.now;
    this.tending = setInterval(() => this.tend(), o.tendMs ?? TEND_MS);
    this.tending.unref();
  }

  /** Keeps containers ready for this image and limits from now on. */
  keep(spec: ContainerSpec): void {
    this.poolOf(spec);
  }

  /** A ready container for this job, or undefined (the job starts a fresh one). Never waits. */
  take(spec: ContainerSpec): T | undefined {
    if (this.stopped) return undefined;
    const pool = this.poolOf(spec);
    pool.arrivals.push(this.now());
    let found: T | undefined;
    while (!found && pool.ready.length) {
      const { item } = pool.ready.shift()!;
      if (this.o.alive(item)) found = item;
      else this.o.discard(item);
    }
    if (found) this.hits++;
    else this.misses++;
    this.fill(pool);
    return found;
  }

  stats(): PoolStats {
    return {
      keys: [...this.pools.values()].map((p) => ({ key: p.key, image: p.spec.image, ready: p.ready.length, starting: p.starting, target: this.target(p) })),
      hits: this.hits,
      misses: this.misses,
    };
  }

  /** The ready containers, none given a job yet. */
  readyItems(): T[] {
    return [...this.pools.values()].flatMap((p) => p.ready.map((r) => r.item));
  }

  /** Resolves once no container is starting and each pool holds its floor (tests wait on it). */
  async settled(pollMs = 50): Promise<void> {
    const full = (): boolean => [...this.pools.values()].every((p) => p.starting === 0 && p.ready.length >= Math.min(this.o.floor, this.o.ceiling));
    while (!this.stopped && !full()) {
      this.tend();
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }

  /** Discards every ready container, and each one still starting once it is up. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    clearInterval(this.tending);
    for (const pool of this.pools.values()) {
      for (const { item } of pool.ready.splice(0)) this.o.discard(item);
    }
    while (this.starts.size) await Promise.all([...this.starts]);
  }

  private poolOf(spec: ContainerSpec): Pool<T> {
    const key = poolKey(spec);
    let pool = this.pools.get(key);
    if (!pool) {
      pool = { key, spec: { image: spec.image, limits: { ...spec.limits } }, ready: [], starting: 0, arrivals: [], warmMs: 2000, failures: 0, retryAt: 0 };
      this.pools.set(key, pool);
      this.fill(pool);
    }
    return pool;
  }

  /** How many containers this pool should hold now. */
  private target(pool: Pool<T>): number {
    const since = this.now() - RATE_WINDOW_MS;
    while (pool.arrivals.length && pool.arrivals[0]! < since) pool.arrivals.shift();
    const perMs = pool.arrivals.length / RATE_WINDOW_MS;
    const wanted = Math.ceil(perMs * pool.warmMs);
    return Math.min(this.o.ceiling, Math.max(this.o.floor, wanted));
  }

  private tend(): void {
    const maxIdleMs = this.o.maxIdleMs ?? 15 * 60_000;
    const now = this.now();
    for (const pool of this.pools.values()) {
      pool.ready = pool.ready.filter((r) => {
        const keep = this.o.alive(r.item) && now - r.readyAt < maxIdleMs;
        if (!keep) this.o.discard(r.item);
        return keep;
      });
      // more than the target after a burst: the oldest go
      const excess = pool.ready.length + pool.starting - this.target(pool);
      if (excess > 0) for (const r of pool.ready.splice(0, Math.min(excess, pool.ready.length))) this.o.discard(r.item);
      this.fill(pool);
    }
  }

  private fill(pool: Pool<T>): void {
    if (this.stopped || this.now() < pool.retryAt) return;
    while (pool.ready.length + pool.starting < this.target(pool)) {
      pool.starting++;
      const began = this.now();
      const start = this.o
        .start(pool.spec, this.stopping.signal)
        .then(
          (item) => {
            if (this.stopped) return this.o.discard(item);
            pool.ready.push({ item, readyAt: this.now() });
            pool.warmMs = 0.7 * pool.warmMs + 0.3 * (this.now() - began);
            if (pool.failures) this.o.log.info('pre-started grading containers start again', { pool: pool.key });
            pool.failures = 0;
          },
          (err: Error) => {
            pool.failures++;
            pool.retryAt = this.now() + backoffMs(pool.failures, FIRST_RETRY_MS, MAX_RETRY_MS);
            // once per run of failures: jobs start fresh containers meanwhile
            if (pool.failures === 1) this.o.log.warn('cannot pre-start a grading container; jobs start fresh ones meanwhile', { pool: pool.key, error: err.message });
          },
        )
        .finally(() => {
          pool.starting--;
          this.starts.delete(start);
        });
      this.starts.add(start);
      if (pool.failures) break; // one probe at a time while starts fail
    }
  }
}

/** How many recent jobs of a pool decide what its next containers import. */
const RECENT_JOBS = 20;

/**
 * What a pool's next containers import: of the modules the image lists, those that at least
 * half of the pool's last 20 jobs named (all of them before any job). Importing a library no
 * notebook uses costs every pre-started container its CPU (pandas 0.4 CPU-s, pyplot 0.4).
 */
export class RecentModules {
  private readonly recent = new Map<string, string[][]>();

  record(key: string, named: string[]): void {
    const list = this.recent.get(key) ?? [];
    list.push(named);
    if (list.length > RECENT_JOBS) list.shift();
    this.recent.set(key, list);
  }

  choose(key: string, candidates: string[]): string[] {
    const list = this.recent.get(key);
    if (!list?.length) return candidates;
    return candidates.filter((m) => 2 * list.filter((named) => named.includes(m)).length >= list.length);
  }
}
