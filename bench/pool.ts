/**
 * The benches' one switch for the container runner's pool of pre-started containers
 * (`--pool on|off|both`): how it maps to the runner's option and to the configuration's
 * `queue.pool`, and reading the pool's state. Everything that depends on the pool is here.
 */
import { ContainerRunner, type RunnerOptions } from '../src/grading/container-runner.js';

export type PoolMode = 'on' | 'off';

/** What `runner.poolStats()` answers. */
export interface PoolStats {
  keys: Array<{ key: string; ready: number; starting: number }>;
  hits: number;
  misses: number;
}

/** The pool's side of ContainerRunner. */
interface PoolRunner {
  stop?(): Promise<void>;
  poolStats?(): PoolStats;
}

/** Whether this build's ContainerRunner has the pool. */
export function hasPool(): boolean {
  return typeof (ContainerRunner.prototype as PoolRunner).poolStats === 'function';
}

/** `--pool on|off|both` (both: `allowBoth`), by default both when the pool exists and allowed, else off. */
export function poolModes(flag: string | undefined, allowBoth: boolean): PoolMode[] {
  const asked = flag ?? (hasPool() ? (allowBoth ? 'both' : 'on') : 'off');
  const modes: Record<string, PoolMode[]> = { on: ['on'], off: ['off'], ...(allowBoth ? { both: ['off', 'on'] } : {}) };
  const found = modes[asked];
  if (!found) throw new Error(`--pool must be one of ${Object.keys(modes).join(', ')}, not "${asked}"`);
  if (found.includes('on') && !hasPool()) throw new Error(`--pool ${asked}: this build's ContainerRunner has no pool of pre-started containers (no poolStats)`);
  return found;
}

/** The pool's size for `workers` concurrent gradings, as the configuration defaults it: floor = workers, ceiling = 2 x workers. */
function size(mode: PoolMode, workers: number): { floor: number; ceiling: number } {
  return mode === 'on' ? { floor: workers, ceiling: 2 * workers } : { floor: 0, ceiling: 2 * workers };
}

/** A runner with the pool on or off. */
export function runnerOptions(mode: PoolMode, workers: number): RunnerOptions {
  // without the pool in this build there is no option to give (and nothing to turn off)
  return hasPool() ? ({ pool: size(mode, workers) } as RunnerOptions) : {};
}

/** The configuration's `queue.pool` for the pool on or off (absent when this build has no pool). */
export function queuePool(mode: PoolMode, workers: number): { pool?: { floor: number; ceiling: number } } {
  return hasPool() ? { pool: size(mode, workers) } : {};
}

/** The runner's pool state, or null without a pool. */
export function poolStats(runner: ContainerRunner): PoolStats | null {
  return (runner as PoolRunner).poolStats?.() ?? null;
}

/** Removes the pool's containers (nothing to do without a pool). */
export async function stopRunner(runner: ContainerRunner): Promise<void> {
  await (runner as PoolRunner).stop?.();
}

/** Waits until every key of the pool has its floor ready and none starting (at most `timeoutMs`); true when it did. */
export async function poolSettled(runner: ContainerRunner, floor: number, timeoutMs = 60_000): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const stats = poolStats(runner);
    if (!stats) return true;
    if (stats.keys.length && stats.keys.every((k) => k.ready >= floor && k.starting === 0)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}
