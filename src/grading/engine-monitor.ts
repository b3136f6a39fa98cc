import type { Logger } from '../lib/logger.js';
import type { ContainerRunner } from './container-runner.js';

export type EngineState = 'up' | 'down' | 'unknown';

/**
 * Whether this worker's Docker engine can grade now: it answers a ping and has the grader images.
 * Probed before each claim, the answer cached briefly; both transitions are logged once, and
 * when the engine comes back the containers left by jobs it failed under are swept.
 */
export class EngineMonitor {
  private current: EngineState = 'unknown';
  private checkedAt = -Infinity;
  private probing: Promise<boolean> | undefined;
  private lastError = '';
  private probed = 0;

  constructor(
    private readonly runner: ContainerRunner,
    private readonly o: { images: string[]; log: Logger; cacheMs: number; engine: string; now?: () => number },
  ) {}

  get state(): EngineState {
    return this.current;
  }

  /** How many times the engine was probed (each claim attempt past the cache asks once). */
  get probes(): number {
    return this.probed;
  }

  /** The engine's last failure, for operators (health, logs); never for learners. */
  get error(): string {
    return this.lastError;
  }

  /** True when the engine can grade; probes at most once per cacheMs, one probe at a time. */
  ready(): Promise<boolean> {
    const now = (this.o.now ?? Date.now)();
    if (now - this.checkedAt < this.o.cacheMs) return Promise.resolve(this.current === 'up');
    return (this.probing ??= this.probe().finally(() => {
      this.probing = undefined;
      this.checkedAt = (this.o.now ?? Date.now)();
    }));
  }

  /** A job just saw the engine fail: probe again before the next claim. */
  failed(error: string): void {
    this.lastError = error;
    this.checkedAt = -Infinity;
  }

  private async probe(): Promise<boolean> {
    this.probed++;
    try {
      for (const image of this.o.images) await this.runner.checkReady(image);
    } catch (err) {
      this.lastError = (err as Error).message;
      if (this.current !== 'down') this.o.log.error('the Docker engine cannot grade: claiming no jobs until it can', { engine: this.o.engine, error: this.lastError });
      this.current = 'down';
      return false;
    }
    if (this.current === 'down') {
      this.o.log.warn('the Docker engine answers again: claiming jobs', { engine: this.o.engine });
      await this.runner.removeLeftovers().catch((err: Error) => this.o.log.warn('cannot sweep leftover grading containers yet', { engine: this.o.engine, error: err.message }));
    }
    this.current = 'up';
    return true;
  }
}
