/**
 * What a polling loop sleeps on: it sleeps `idle(ms)` between looks for work, and is woken early
 * by `wake()` (look again now) or `nudge()` (new work may be due: look again now, and do not fall
 * asleep before that look, even if the nudge came while the loop was busy).
 */
export class PollLoop {
  private readonly sleepers = new Set<() => void>();
  private nudged = false;

  /** Wakes every sleeper. */
  wake(): void {
    for (const wake of [...this.sleepers]) wake();
  }

  /** Work may be due: wakes every sleeper, and the next `idle` returns at once. */
  nudge(): void {
    this.nudged = true;
    this.wake();
  }

  /** Whether a nudge came since the last call (and forgets it). */
  takeNudge(): boolean {
    const n = this.nudged;
    this.nudged = false;
    return n;
  }

  /** Sleeps `ms`, or until woken; at once when a nudge is pending. */
  idle(ms: number): Promise<void> {
    if (this.nudged) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const finish = (): void => {
        clearTimeout(timer);
        this.sleepers.delete(finish);
        resolve();
      };
      const timer = setTimeout(finish, ms);
      this.sleepers.add(finish);
    });
  }
}
