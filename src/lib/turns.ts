/**
 * Runs CPU-heavy steps one per turn of the event loop. During a spike, the bodies of many
 * requests complete in the same turn; parsing them all there would make every I/O callback
 * (among them each round trip of the database transaction that acknowledges the previous
 * group) wait for the whole wave. Taking turns, a callback waits for one step at most.
 */
export class OnePerTurn {
  private readonly queue: Array<() => void> = [];
  private scheduled = false;

  run<T>(step: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push(() => {
        try {
          resolve(step());
        } catch (err) {
          reject(err);
        }
      });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(this.turn);
      }
    });
  }

  private readonly turn = (): void => {
    this.queue.shift()?.();
    if (this.queue.length) setImmediate(this.turn);
    else this.scheduled = false;
  };
}
