import { spawn } from 'node:child_process';

/**
 * A long-running processor's V8 heap limits, set by the process for itself. V8 sizes its
 * heap once, when the process starts (`v8.setFlagsFromString` later changes nothing), and
 * by default lets the old generation grow toward ~4 GiB and each young semi-space to
 * 16 MiB before it collects hard: a processor whose live objects are ~60-90 MB was
 * measured at 286 MB of heap (`sluice live`, BENCHMARKS.md "Live: memory"). So the
 * command runs itself again once, as a child `node --max-old-space-size=N
 * --max-semi-space-size=M <same arguments>`, unless the flags are already there (given
 * on the command line or in NODE_OPTIONS: the operator's choice wins) or the limits are 0.
 *
 * The parent only relays: SIGTERM, SIGINT and SIGHUP go to the child (a graceful stop),
 * and it exits with the child's code. The child dies with its parent: a SIGKILLed parent
 * is seen by the child within 0.2 s (its parent process id changes) and it kills itself with SIGKILL, so
 * killing the process one started still crashes the processor (no graceful commit), as
 * the fault tests and a container runtime expect.
 */
export interface HeapLimits {
  /** --max-old-space-size, MiB; 0 = V8's default. */
  maxOldSpaceMb: number;
  /** --max-semi-space-size, MiB; 0 = V8's default. */
  maxSemiSpaceMb: number;
}

const RELAUNCHED = 'SLUICE_V8_HEAP_CHILD';

/**
 * The words of `sluice [-c file] <command> [<subcommand>...]` before any other option (the
 * relaunch is decided in bin/sluice.mjs before the CLI loads: a parent that had loaded it
 * would hold ~100 MB for nothing).
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

/** The heap limits the command line's processor runs with, if it has its own (see OWN_HEAP_LIMITS). */
export async function ownHeapLimits(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<HeapLimits | undefined> {
  const words = commandWords(argv);
  const own = words.length === 1 ? OWN_HEAP_LIMITS[words[0]!] : undefined;
  if (!own) return undefined;
  const { HEAP_DEFAULTS } = (await import(own.defaults)) as { HEAP_DEFAULTS: HeapLimits };
  return heapLimitsFromEnv(own.envPrefix, HEAP_DEFAULTS, env);
}

/** Limits from environment variables (`prefix` + MAX_OLD_SPACE_MB / MAX_SEMI_SPACE_MB), else the defaults; a bad value is left to the settings check. */
export function heapLimitsFromEnv(prefix: string, defaults: HeapLimits, env: NodeJS.ProcessEnv = process.env): HeapLimits {
  const read = (name: string, fallback: number) => {
    const v = env[`${prefix}${name}`];
    return v !== undefined && /^\d+$/.test(v.trim()) ? Number(v) : fallback;
  };
  return { maxOldSpaceMb: read('MAX_OLD_SPACE_MB', defaults.maxOldSpaceMb), maxSemiSpaceMb: read('MAX_SEMI_SPACE_MB', defaults.maxSemiSpaceMb) };
}

/** The flags to add: none when already set (command line, NODE_OPTIONS) or asked for none. */
export function heapFlags(limits: HeapLimits, execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): string[] {
  // V8 reads --max_old_space_size as --max-old-space-size.
  const given = [...execArgv, ...nodeOptions.split(/\s+/)].map((a) => a.split('=')[0]!.replace(/_/g, '-'));
  const has = (flag: string) => given.includes(flag);
  const flags: string[] = [];
  if (limits.maxOldSpaceMb > 0 && !has('--max-old-space-size')) flags.push(`--max-old-space-size=${limits.maxOldSpaceMb}`);
  if (limits.maxSemiSpaceMb > 0 && !has('--max-semi-space-size')) flags.push(`--max-semi-space-size=${limits.maxSemiSpaceMb}`);
  return flags;
}

/**
 * In the child (or when no flag is needed): resolves false at once, the caller runs the
 * command. In the parent: runs the child and exits the process with its code (never resolves).
 */
export async function relaunchWithHeapLimits(limits: HeapLimits): Promise<false> {
  if (process.env[RELAUNCHED] === '1') {
    // The child: dies with its parent, however it went (a SIGKILL leaves no time to tell): once
    // the parent is gone the child is handed to another one, and its ppid changes.
    const parent = process.ppid;
    setInterval(() => {
      if (process.ppid !== parent) process.kill(process.pid, 'SIGKILL');
    }, 200).unref();
    return false;
  }
  const flags = heapFlags(limits);
  if (flags.length === 0) return false;
  const child = spawn(process.execPath, [...flags, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, [RELAUNCHED]: '1' },
  });
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => child.kill(signal));
  const code = await new Promise<number>((resolve) => {
    child.once('error', (error) => {
      console.error(`sluice: starting ${process.execPath} ${flags.join(' ')} failed: ${error.message}`);
      resolve(1);
    });
    child.once('exit', (c, signal) => resolve(c ?? (signal === 'SIGKILL' ? 137 : signal === 'SIGTERM' ? 143 : 1)));
  });
  process.exit(code);
}
