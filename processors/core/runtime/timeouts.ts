/**
 * Waiting on a promise for a bounded time, in one place (the export runner's stop, a
 * consumer leaving its group, the report shim, health checks, shutdown). The promise is
 * never cancelled: past the bound it keeps running and settles on its own, and its later
 * rejection is always handled here (never an unhandled rejection). Timers are cleared as
 * soon as the race ends.
 */

/** What became of a promise within a bound. */
export type Outcome<T> = { settled: true; value: T } | { settled: true; error: unknown } | { settled: false };

/** What `p` became within `ms`: its value, its error, or not settled yet. */
export async function within<T>(p: Promise<T>, ms: number): Promise<Outcome<T>> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race<Outcome<T>>([
      p.then(
        (value) => ({ settled: true, value }),
        (error: unknown) => ({ settled: true, error }),
      ),
      new Promise<Outcome<T>>((resolve) => (timer = setTimeout(() => resolve({ settled: false }), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether `p` settles (resolves or rejects) within `ms`. */
export async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  return (await within(p, ms)).settled;
}

/** `p`'s value, or its error; an Error with `message` if it has not settled within `ms`. */
export async function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  const outcome = await within(p, ms);
  if (!outcome.settled) throw new Error(message);
  if ('error' in outcome) throw outcome.error;
  return outcome.value;
}

/** Waits for `p`, calling `beat` (e.g. a consumer heartbeat) every `everyMs` meanwhile; an error of `beat` ends the wait. */
export async function whileBeating<T>(p: Promise<T>, beat: () => Promise<void>, everyMs = 1000): Promise<T> {
  for (;;) {
    const outcome = await within(p, everyMs);
    if (outcome.settled) {
      if ('error' in outcome) throw outcome.error;
      return outcome.value;
    }
    await beat();
  }
}
