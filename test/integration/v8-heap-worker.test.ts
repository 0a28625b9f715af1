/**
 * core/runtime/v8-heap.ts: a processor that sets its own V8 heap limits runs in a worker
 * thread of its process, created with them. Real processes (no servers needed): the worker
 * has the limits (and dies of them), a SIGTERM to the process reaches the processor's handler
 * (graceful stop, its exit code), one nobody handles keeps its default action, an exit code
 * and an uncaught error come out of the process with everything written before them, a
 * SIGKILL ends it, and an operator's heap flag keeps everything in the main thread.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildDist, ROOT } from '../support/build.js';

const dir = mkdtempSync(join(tmpdir(), 'sluice-v8-heap-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A stand-in for bin/sluice.mjs: the same two calls, then what the mode (first argument) asks. */
function script(): string {
  const module = buildDist('processors/core/runtime/v8-heap.js');
  const logger = buildDist('processors/core/log/logger.js');
  const file = join(dir, 'proc.mjs');
  writeFileSync(
    file,
    `import { getHeapStatistics, getHeapSpaceStatistics } from 'node:v8';
import { isMainThread, threadId } from 'node:worker_threads';
const heap = await import(${JSON.stringify(module)});
const { createLogger } = await import(${JSON.stringify(logger)});
const args = process.argv.slice(2);
if (!heap.runInHeapLimitedWorker(new URL(import.meta.url), args, { maxOldSpaceMb: 64, maxSemiSpaceMb: 2 })) {
  heap.receiveRelayedSignals();
  const mode = args[0];
  // Young garbage, to let the young generation grow to its limit.
  let keep = [];
  let newSpace = 0;
  for (let i = 0; i < 300000; i++) {
    keep.push({ i, s: 'x' + i });
    if (keep.length > 5000) keep = [];
    if (i % 1000 === 0) newSpace = Math.max(newSpace, getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size);
  }
  keep = [];
  const info = { pid: process.pid, isMainThread, threadId, limitMb: getHeapStatistics().heap_size_limit / 1048576, newSpaceMb: newSpace / 1048576, inForce: heap.heapLimitsInForce() };
  if (mode === 'serve') {
    const log = createLogger({ name: 'proc' });
    process.on('SIGTERM', () => {
      log.info('shutting down');
      setTimeout(() => {
        for (let i = 0; i < 3; i++) log.info({ closer: i }, 'closed');
        process.exit(7);
      }, 5);
    });
  }
  console.log(JSON.stringify(info));
  if (mode === 'serve' || mode === 'idle') setInterval(() => undefined, 1000);
  if (mode === 'exit') {
    for (let i = 0; i < 3000; i++) process.stdout.write(\`line \${i}\\n\`);
    console.error('last words');
    process.exit(3);
  }
  if (mode === 'throw') setTimeout(function failsLater() { throw new Error('boom in the worker'); }, 10);
  if (mode === 'grow') {
    const held = [];
    setInterval(() => { for (let i = 0; i < 20000; i++) held.push({ i, s: 'y' + i + held.length }); }, 1);
  }
}
`,
  );
  return file;
}

interface Run {
  child: ChildProcess;
  info: Promise<{ pid: number; isMainThread: boolean; threadId: number; limitMb: number; newSpaceMb: number; inForce: { maxOldSpaceMb: number; maxSemiSpaceMb: number } }>;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function start(file: string, args: string[], nodeArgs: string[] = [], env: NodeJS.ProcessEnv = process.env): Run {
  const child = spawn(process.execPath, [...nodeArgs, file, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const info = new Promise<Awaited<Run['info']>>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) resolve(JSON.parse(line) as Awaited<Run['info']>);
    });
    child.once('exit', () => reject(new Error(`exited before its first line: ${out}${err}`)));
  });
  info.catch(() => undefined);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
  return { child, info, stdout: () => out, stderr: () => err, exited };
}

describe('a process that sets its own V8 heap limits', () => {
  const file = script();

  it('runs the command in a worker of the same process, whose heap has the limits', async () => {
    const a = start(file, ['idle']);
    const info = await a.info;
    expect(info.pid).toBe(a.child.pid); // one process
    expect(info.isMainThread).toBe(false);
    expect(info.limitMb).toBe(64 + 3 * 2); // old generation + young (three semi-spaces); V8's default here is ~4 GiB
    expect(info.newSpaceMb).toBeGreaterThan(0);
    expect(info.newSpaceMb).toBeLessThanOrEqual(2 * 2); // two semi-spaces of 2 MiB (V8's default grew to 8+ on the same garbage)
    expect(info.inForce).toEqual({ maxOldSpaceMb: 64, maxSemiSpaceMb: 2 });
    a.child.kill('SIGKILL'); // one process: nothing is left behind
    expect(await a.exited).toEqual({ code: null, signal: 'SIGKILL' });
  });

  it('relays a SIGTERM to the handler in the worker and exits with its code; a signal nobody handles keeps its default action', async () => {
    const a = start(file, ['serve']);
    await a.info;
    a.child.kill('SIGTERM');
    expect(await a.exited).toEqual({ code: 7, signal: null });
    // The processor's log lines, the last ones written just before process.exit() in the worker: none lost, in order.
    const logged = a.stdout().split('\n').filter((l) => l.startsWith('{"level"')).map((l) => JSON.parse(l) as { msg: string; closer?: number });
    expect(logged.map((l) => l.closer ?? l.msg)).toEqual(['shutting down', 0, 1, 2]);

    const b = start(file, ['idle']);
    await b.info;
    b.child.kill('SIGTERM');
    expect(await b.exited).toEqual({ code: null, signal: 'SIGTERM' });
  });

  it('passes the exit code on after everything the worker wrote, and an uncaught error crashes with its stack', async () => {
    const a = start(file, ['exit']);
    const { code } = await a.exited;
    expect(code).toBe(3);
    const lines = a.stdout().split('\n').filter((l) => l.startsWith('line '));
    expect(lines).toHaveLength(3000);
    expect(lines[2999]).toBe('line 2999');
    expect(a.stderr()).toContain('last words');

    const b = start(file, ['throw']);
    expect((await b.exited).code).toBe(1);
    expect(b.stderr()).toContain('boom in the worker');
    expect(b.stderr()).toMatch(/at (Timeout\.)?failsLater/);
  });

  it('the old-generation limit holds: a worker that outgrows it is stopped, and the process exits 1 saying why', async () => {
    const a = start(file, ['grow']);
    await a.info;
    const { code } = await a.exited;
    expect(code).toBe(1);
    expect(a.stderr()).toContain('ERR_WORKER_OUT_OF_MEMORY');
  }, 60_000);

  it("the operator's heap flag wins: no worker, V8 sizes the main thread's heap with the flag alone", async () => {
    const a = start(file, ['idle'], ['--max-old-space-size=96']);
    const info = await a.info;
    expect(info.isMainThread).toBe(true);
    expect(info.limitMb).toBeGreaterThanOrEqual(96);
    expect(info.limitMb).toBeLessThan(96 + 3 * 16 + 1); // V8's default young generation, not ours
    expect(info.inForce).toEqual({ maxOldSpaceMb: 96, maxSemiSpaceMb: 0 });
    a.child.kill('SIGKILL');
    await a.exited;

    const b = start(file, ['idle'], [], { ...process.env, NODE_OPTIONS: '--max_semi_space_size=8' });
    const second = await b.info;
    expect(second.isMainThread).toBe(true);
    expect(second.inForce).toEqual({ maxOldSpaceMb: 0, maxSemiSpaceMb: 8 });
    b.child.kill('SIGKILL');
    await b.exited;
  });

  it('`sluice live` with a heap limit that is not one stops with the settings error naming the variable and the fix', () => {
    buildDist('processors/cli/main.js');
    const r = spawnSync(process.execPath, [join(ROOT, 'bin/sluice.mjs'), 'live'], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, SLUICE_LIVE_MAX_OLD_SPACE_MB: '128m', SLUICE_LIVE_API_KEY: 'a-long-random-key-for-live' },
      timeout: 60_000,
    });
    expect(r.status).toBe(78);
    expect(r.stderr).toContain('SLUICE_LIVE_MAX_OLD_SPACE_MB');
    expect(r.stderr).toContain('"128m"');
    expect(r.stderr).toMatch(/whole number of MiB/);
  });
});
