/**
 * Child processes for the benches: a Sluice processor started as users start it
 * (`node bin/sluice.mjs ...`), its memory read from /proc, its /metrics and /readyz
 * polled, and a graceful stop.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { sleep } from '../../processors/core/errors/retry.js';

/** The project folder (bench files run from dist/bench/). */
export const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
export const SLUICE_BIN = `${ROOT}bin/sluice.mjs`;

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.once('error', reject);
  });
}

/** VmRSS (now), VmHWM (peak so far), RssAnon (heap and other private memory) or RssFile (mapped files, e.g. LMDB pages) of a process, in KiB; 0 once it is gone. */
export function memoryKb(pid: number, field: 'VmRSS' | 'VmHWM' | 'RssAnon' | 'RssFile'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Children still running: a bench that dies (an uncaught error) must not leave processors behind it. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGTERM');
});

export interface SluiceProcess {
  child: ChildProcess;
  pid: number;
  port: number;
  spawnedAt: number;
  /** Rejects when the process exits before stop() was called. */
  exited: Promise<never>;
  /** The Prometheus text of /metrics, or undefined when it does not answer (yet). */
  metrics(): Promise<string | undefined>;
  /** Waits until /readyz answers 200. */
  ready(timeoutMs: number): Promise<void>;
  /** SIGTERM (graceful: flush and commit), SIGKILL after `graceMs`; resolves with the exit code. */
  stop(graceMs?: number): Promise<number | null>;
}

/** Starts `node [nodeArgs] bin/sluice.mjs <args>` with extra env; its stderr goes to ours (warnings and errors). */
export function startSluice(args: string[], options: { env: Record<string, string>; port: number; nodeArgs?: string[]; stdout?: 'inherit' | 'ignore'; label: string; root?: string }): SluiceProcess {
  const spawnedAt = Date.now();
  // `root`: another built checkout of Sluice (a before/after comparison); this one when absent.
  const root = options.root ?? ROOT;
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), `${root}bin/sluice.mjs`, ...args], {
    cwd: root,
    stdio: ['ignore', options.stdout ?? 'ignore', 'inherit'],
    env: { ...process.env, ...options.env },
  });
  live.add(child);
  child.once('exit', () => live.delete(child));
  let stopping = false;
  const exited = new Promise<never>((_, reject) => {
    child.once('exit', (code, signal) => {
      if (!stopping) reject(new Error(`${options.label} exited early (code ${code}, signal ${signal})`));
    });
  });
  exited.catch(() => undefined); // observed by whoever races it
  const base = `http://127.0.0.1:${options.port}`;
  return {
    child,
    pid: child.pid!,
    port: options.port,
    spawnedAt,
    exited,
    async metrics() {
      try {
        const res = await fetch(`${base}/metrics`);
        return res.ok ? await res.text() : undefined;
      } catch {
        return undefined;
      }
    },
    async ready(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (child.exitCode !== null) throw new Error(`${options.label} exited with ${child.exitCode} before it was ready`);
        const ok = await fetch(`${base}/readyz`).then((r) => r.ok, () => false);
        if (ok) return;
        if (Date.now() > deadline) throw new Error(`${options.label} was not ready within ${timeoutMs / 1000} s`);
        await sleep(200);
      }
    },
    async stop(graceMs = 30_000) {
      stopping = true;
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      const done = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const code = await done;
      clearTimeout(timer);
      return code;
    },
  };
}

/** Sum of a Prometheus counter's samples (all label sets). */
export function metricSum(text: string | undefined, name: string): number {
  if (!text) return 0;
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'gm'))) sum += Number(m[1]);
  return sum;
}
