import { whileBeating } from '../core/runtime/timeouts.js';

/**
 * One partition's work (consuming a fetched batch, starting a flush) runs one at a time:
 * a promise chain. A waiter calls `whileWaiting` (a consumer heartbeat) every second, and
 * an error of it (the group is rebalancing) makes it leave the queue without running.
 */
export class PartitionLock {
  private tail: Promise<void> = Promise.resolve();
  /** Whether work holds the lock now (the idle timer skips a busy partition). */
  busy = false;

  async run(fn: () => Promise<void>, whileWaiting?: () => Promise<void>): Promise<void> {
    const previous = this.tail;
    let release!: () => void;
    this.tail = new Promise((r) => (release = r));
    let holding = false;
    try {
      if (whileWaiting) await whileBeating(previous, whileWaiting);
      else await previous;
      holding = true;
      this.busy = true;
      await fn();
    } finally {
      if (holding) {
        this.busy = false;
        release();
      } else {
        // Left while waiting: the holder before us still runs, so whoever queued behind us waits for it too.
        void previous.then(release);
      }
    }
  }
}
