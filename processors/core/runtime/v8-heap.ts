import { inspect } from 'node:util';
import { isMainThread, parentPort, Worker, workerData, type ResourceLimits } from 'node:worker_threads';

/**
 * A long-running processor's V8 heap limits, set by the process for itself. V8 sizes a heap
 * once, when its isolate starts (`v8.setFlagsFromString` later changes nothing for it), and
 * by default lets the old generation grow toward ~4 GiB and each young semi-space to 16 MiB
 * before it collects hard: a processor whose live objects are ~60-90 MB was measured at
 * 286 MB of heap (`sluice live`, BENCHMARKS.md "Live: memory"). So the command runs in a
 * worker thread of the same process, whose isolate is created with the limits
 * (`resourceLimits`), unless the operator already chose (a heap flag on the command line or
 * in NODE_OPTIONS: then no limit of ours, in the main thread) or the limits are 0.
 *
 * One process, not a parent and a child: no second node binary and isolate in the RSS, and a
 * SIGKILL ends it all. The main thread only starts the worker, relays SIGTERM, SIGINT and
 * SIGHUP to it (signals reach only the main thread: the worker emits them on its own
 * `process`, where the processors listen; one the worker does not handle is raised again
 * with its default action, e.g. a SIGTERM during start-up kills the process as before), and
 * exits with the worker's exit code once the worker's output is written. An uncaught error
 * in the worker is printed with its stack on stderr and exits 1.
 */
export interface HeapLimits {
  /** Old-generation limit, MiB (node --max-old-space-size); 0 = V8's default. */
  maxOldSpaceMb: number;
  /** Semi-space limit, MiB (node --max-semi-space-size); 0 = V8's default. */
  maxSemiSpaceMb: number;
}

/** The most a heap limit setting may say, MiB (1 TiB). */
export const MAX_HEAP_MB = 1_048_576;

/**
 * A heap limit as written in an environment variable: a whole number of MiB, 0 for V8's
 * default; undefined when it is not one. The settings module's schema for these settings
 * (core/config/heap-settings.ts) is this function, so what the main thread accepts before
 * anything loads and what the settings accept are the same.
 */
export function parseHeapMb(raw: string): number | undefined {
  const v = raw.trim();
  if (!/^\d+$/.test(v)) return undefined;
  const n = Number(v);
  return n <= MAX_HEAP_MB ? n : undefined;
}

/**
 * The words of `sluice [-c file] <command> [<subcommand>...]` before any other option (the
 * decision is made in bin/sluice.mjs before the CLI loads: a main thread that had loaded it
 * would hold its modules in the process for nothing).
 */
export function commandWords(argv: readonly string[]): string[] {
  const words: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-c' || a === '--config') i++;
    else if (a.startsWith('-')) break;
    else words.push(a);
  }
  return words;
}

/** The command's name in `sluice [-c file] <command> ...`. */
export function commandOf(argv: readonly string[]): string | undefined {
  return commandWords(argv)[0];
}

/**
 * The processors that run with heap limits of their own: the command, the prefix of its
 * SLUICE_<X>_MAX_OLD_SPACE_MB / _MAX_SEMI_SPACE_MB variables, and the module (relative to
 * this one) exporting its HEAP_DEFAULTS, a file of its own so that nothing else loads.
 * Only the processor itself (`sluice live`, `sluice files`), not its subcommands
 * (`sluice files status`), which are short CLI runs.
 */
export const OWN_HEAP_LIMITS: Readonly<Record<string, { envPrefix: string; defaults: string }>> = {
  live: { envPrefix: 'SLUICE_LIVE_', defaults: '../../live/heap-defaults.js' },
  files: { envPrefix: 'SLUICE_FILES_', defaults: '../../files/heap-defaults.js' },
};

/**
 * The heap limits the command line's processor runs with, if it has its own (see
 * OWN_HEAP_LIMITS). Undefined also when a variable is not a valid limit: the command then
 * runs in this thread, where its settings (the same parse, core/config/heap-settings.ts)
 * stop it with an error naming the variable and the fix.
 */
export async function ownHeapLimits(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<HeapLimits | undefined> {
  const words = commandWords(argv);
  const own = words.length === 1 ? OWN_HEAP_LIMITS[words[0]!] : undefined;
  if (!own) return undefined;
  const { HEAP_DEFAULTS } = (await import(own.defaults)) as { HEAP_DEFAULTS: HeapLimits };
  return heapLimitsFromEnv(own.envPrefix, HEAP_DEFAULTS, env);
}

/**
 * Limits from environment variables (`prefix` + MAX_OLD_SPACE_MB / MAX_SEMI_SPACE_MB; unset
 * or empty: the default, as the settings module reads them), undefined when one is invalid.
 */
export function heapLimitsFromEnv(prefix: string, defaults: HeapLimits, env: NodeJS.ProcessEnv = process.env): HeapLimits | undefined {
  const read = (name: string, fallback: number): number | undefined => {
    const v = env[`${prefix}${name}`];
    return v === undefined || v === '' ? fallback : parseHeapMb(v);
  };
  const maxOldSpaceMb = read('MAX_OLD_SPACE_MB', defaults.maxOldSpaceMb);
  const maxSemiSpaceMb = read('MAX_SEMI_SPACE_MB', defaults.maxSemiSpaceMb);
  return maxOldSpaceMb === undefined || maxSemiSpaceMb === undefined ? undefined : { maxOldSpaceMb, maxSemiSpaceMb };
}

/** V8 flags that size the heap (V8 reads --max_old_space_size as --max-old-space-size). */
const HEAP_FLAGS = { '--max-old-space-size': 'maxOldSpaceMb', '--max-semi-space-size': 'maxSemiSpaceMb', '--max-heap-size': 'maxOldSpaceMb' } as const;

/** The heap flags the operator gave (command line, NODE_OPTIONS), with their values in MiB. */
export function operatorHeapFlags(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): Partial<HeapLimits> {
  const given: Partial<HeapLimits> = {};
  const words = [...nodeOptions.split(/\s+/), ...execArgv]; // the command line wins over NODE_OPTIONS
  for (let i = 0; i < words.length; i++) {
    const [name, inline] = words[i]!.split('=', 2) as [string, string | undefined];
    const key = HEAP_FLAGS[name.replace(/_/g, '-') as keyof typeof HEAP_FLAGS];
    if (!key) continue;
    const value = inline ?? words[++i];
    given[key] = Number(value);
  }
  return given;
}

/**
 * The worker's resource limits: V8's young generation is three semi-spaces (two, and as much
 * again for large new objects), so --max-semi-space-size=4 is a young generation of 12 MiB
 * (checked: the same heap_size_limit either way). A 0 is left out: Node passes a 0 on to V8,
 * which then gives the old generation ~2 MiB, not its default.
 */
export function resourceLimitsOf(limits: HeapLimits): ResourceLimits {
  return {
    ...(limits.maxOldSpaceMb > 0 ? { maxOldGenerationSizeMb: limits.maxOldSpaceMb } : {}),
    ...(limits.maxSemiSpaceMb > 0 ? { maxYoungGenerationSizeMb: 3 * limits.maxSemiSpaceMb } : {}),
  };
}

/** What the worker is handed, to tell which limits it runs with (heapLimitsInForce). */
const WORKER_DATA_KEY = 'sluiceHeapLimits';
/** Messages between the main thread and the worker about signals. */
const SIGNAL_KEY = 'sluiceSignal';
const RELAYED_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;
type RelayedSignal = (typeof RELAYED_SIGNALS)[number];

/**
 * The limits this thread's heap runs with: the operator's flags, else the ones of the worker
 * runInHeapLimitedWorker started (0 = V8's default).
 */
export function heapLimitsInForce(): HeapLimits {
  const given = operatorHeapFlags();
  if (Object.keys(given).length > 0) return { maxOldSpaceMb: given.maxOldSpaceMb ?? 0, maxSemiSpaceMb: given.maxSemiSpaceMb ?? 0 };
  const ours = !isMainThread ? (workerData as Record<string, HeapLimits> | undefined)?.[WORKER_DATA_KEY] : undefined;
  return ours ?? { maxOldSpaceMb: 0, maxSemiSpaceMb: 0 };
}

/**
 * In the main thread: runs `entry` (the CLI's entry, which calls receiveRelayedSignals first)
 * with `argv` in a worker with the limits, and returns true; the process then exits with the
 * worker's code. Returns false, the caller runs the command itself, when the operator gave a
 * heap flag (theirs win, whole) or both limits are 0.
 */
export function runInHeapLimitedWorker(entry: URL, argv: readonly string[], limits: HeapLimits, execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): boolean {
  if (!isMainThread || Object.keys(operatorHeapFlags(execArgv, nodeOptions)).length > 0) return false;
  const resourceLimits = resourceLimitsOf(limits);
  if (Object.keys(resourceLimits).length === 0) return false;
  const worker = new Worker(entry, { argv: [...argv], resourceLimits, workerData: { [WORKER_DATA_KEY]: limits } });
  const relay = (signal: RelayedSignal) => worker.postMessage({ [SIGNAL_KEY]: signal });
  for (const signal of RELAYED_SIGNALS) process.on(signal, relay);
  worker.on('message', (m: unknown) => {
    const signal = relayedSignal(m);
    if (!signal) return;
    // Nobody in the worker handles it: its default action, on the whole process.
    process.off(signal, relay);
    process.kill(process.pid, signal);
  });
  worker.on('error', (error) => {
    process.stderr.write(`sluice: uncaught error: ${inspect(error)}\n`);
  });
  worker.once('exit', (code) => {
    for (const signal of RELAYED_SIGNALS) process.off(signal, relay);
    // Not process.exit(): what the worker wrote to process.stdout/stderr reaches this thread as
    // messages, written once they are all read; then nothing is left and the process ends.
    process.exitCode = code;
    setTimeout(() => process.exit(code), 5_000).unref();
  });
  return true;
}

function relayedSignal(m: unknown): RelayedSignal | undefined {
  const signal = typeof m === 'object' && m !== null ? (m as Record<string, unknown>)[SIGNAL_KEY] : undefined;
  return RELAYED_SIGNALS.find((s) => s === signal);
}

/**
 * In the worker runInHeapLimitedWorker started (a no-op elsewhere): a signal the main thread
 * relays is emitted on this thread's `process`, where the processors listen (core/lifecycle/
 * shutdown.ts), or sent back when nobody listens. Does not keep the thread alive.
 */
export function receiveRelayedSignals(): void {
  if (isMainThread || !parentPort || !(workerData as Record<string, unknown> | undefined)?.[WORKER_DATA_KEY]) return;
  const port = parentPort;
  port.on('message', (m: unknown) => {
    const signal = relayedSignal(m);
    if (!signal) return;
    if (process.listenerCount(signal) > 0) process.emit(signal, signal);
    else port.postMessage({ [SIGNAL_KEY]: signal });
  });
  port.unref();
}
