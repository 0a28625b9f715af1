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

/** Waits for `p`, calling `beat` (a consumer heartbeat) every `everyMs` meanwhile; an error of `beat` ends the wait. */
export async function whileBeating<T>(p: Promise<T>, beat: () => Promise<void>, everyMs = 1000): Promise<T> {
  const pending = Symbol('pending');
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([p, new Promise<typeof pending>((resolve) => (timer = setTimeout(() => resolve(pending), everyMs)))]);
    clearTimeout(timer);
    if (result !== pending) return result as T;
    await beat();
  }
}
