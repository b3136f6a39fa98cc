/**
 * The benches' one switch for the container runner's pool of pre-started containers
 * (`--pool on|off|both`) and the pool's size it maps to, for the runner's option and for the
 * configuration's `queue.pool` alike.
 */
import type { PoolOptions } from '../src/grading/warm-pool.js';

export type PoolMode = 'on' | 'off';

/** `--pool on|off`, and `both` when `allowBoth` (its default; otherwise the default is on). */
export function poolModes(flag: string | undefined, allowBoth: boolean): PoolMode[] {
  const modes: Record<string, PoolMode[]> = { on: ['on'], off: ['off'], ...(allowBoth ? { both: ['off', 'on'] } : {}) };
  const asked = flag ?? (allowBoth ? 'both' : 'on');
  const found = modes[asked];
  if (!found) throw new Error(`--pool must be one of ${Object.keys(modes).join(', ')}, not "${asked}"`);
  return found;
}

/**
 * The pool for `workers` concurrent gradings: on, as the configuration defaults it (floor =
 * workers, ceiling = 2 x workers); off, floor 0.
 */
export function poolSize(mode: PoolMode, workers: number): PoolOptions {
  return mode === 'on' ? { floor: workers, ceiling: 2 * workers } : { floor: 0, ceiling: 0 };
}
