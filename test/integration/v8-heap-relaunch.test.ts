/**
 * core/runtime/v8-heap.ts: a processor that sets its own V8 heap limits runs itself again
 * as a child with them. Real processes (no servers needed): the child has the limits, a
 * SIGTERM to the parent reaches the child (graceful stop, its exit code), and a SIGKILLed
 * parent takes the child with it (a crash stays a crash).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { commandOf, heapFlags, ownHeapLimits } from '../../processors/core/runtime/v8-heap.js';
import { buildDist } from '../support/build.js';
import { eventually } from '../support/servers.js';

const dir = mkdtempSync(join(tmpdir(), 'sluice-v8-heap-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function script(): string {
  const module = buildDist('processors/core/runtime/v8-heap.js');
  const file = join(dir, 'proc.mjs');
  writeFileSync(
    file,
    `import { getHeapStatistics } from 'node:v8';
const { relaunchWithHeapLimits } = await import(${JSON.stringify(module)});
await relaunchWithHeapLimits({ maxOldSpaceMb: 64, maxSemiSpaceMb: 2 });
process.on('SIGTERM', () => { console.log('graceful'); process.exit(7); });
console.log(JSON.stringify({ pid: process.pid, limitMb: getHeapStatistics().heap_size_limit / 1048576 }));
setInterval(() => undefined, 1000);
`,
  );
  return file;
}

function start(file: string): { parent: ChildProcess; first: Promise<{ pid: number; limitMb: number }>; output: () => string; exited: Promise<number | null> } {
  const parent = spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const first = new Promise<{ pid: number; limitMb: number }>((resolve) => {
    parent.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) resolve(JSON.parse(line) as { pid: number; limitMb: number });
    });
  });
  const exited = new Promise<number | null>((resolve) => parent.once('exit', (code) => resolve(code)));
  return { parent, first, output: () => out, exited };
}

/** Running (a dead child not reaped yet by whoever adopted it is a zombie: not alive). */
const alive = (pid: number) => {
  try {
    return !/^\d+ \(.*\) [ZX]/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

describe('a process that sets its own V8 heap limits', () => {
  it('adds only the flags not given already, and finds the command behind the global options', () => {
    expect(heapFlags({ maxOldSpaceMb: 160, maxSemiSpaceMb: 8 }, [], '')).toEqual(['--max-old-space-size=160', '--max-semi-space-size=8']);
    expect(heapFlags({ maxOldSpaceMb: 160, maxSemiSpaceMb: 8 }, ['--max-old-space-size=512'], '--max_semi_space_size=4')).toEqual([]);
    expect(heapFlags({ maxOldSpaceMb: 0, maxSemiSpaceMb: 8 }, [], '')).toEqual(['--max-semi-space-size=8']);
    expect(commandOf(['-c', 'live', 'live'])).toBe('live');
    expect(commandOf(['--config', 'x.yaml', 'normalizer'])).toBe('normalizer');
    expect(commandOf(['--help'])).toBeUndefined();
  });

  it('applies to the processors that have limits of their own, not to their subcommands, and the environment overrides a default', async () => {
    expect(await ownHeapLimits(['live'], {})).toEqual({ maxOldSpaceMb: 128, maxSemiSpaceMb: 4 });
    expect(await ownHeapLimits(['-c', 'sluice.yaml', 'files'], {})).toEqual({ maxOldSpaceMb: 0, maxSemiSpaceMb: 2 });
    expect(await ownHeapLimits(['files'], { SLUICE_FILES_MAX_SEMI_SPACE_MB: '8' })).toEqual({ maxOldSpaceMb: 0, maxSemiSpaceMb: 8 });
    expect(await ownHeapLimits(['files', 'status', '--since', '1h'], {})).toBeUndefined();
    expect(await ownHeapLimits(['normalizer'], {})).toBeUndefined();
    expect(await ownHeapLimits(['--help'], {})).toBeUndefined();
  });

  it('runs as a child with them; a SIGTERM reaches the child (its exit code), a SIGKILLed parent takes the child with it', async () => {
    const file = script();
    const a = start(file);
    const child = await a.first;
    expect(child.pid).not.toBe(a.parent.pid);
    expect(child.limitMb).toBeLessThan(128); // V8's default here is ~4 GiB; 64 MiB old space + young
    a.parent.kill('SIGTERM');
    expect(await a.exited).toBe(7);
    expect(a.output()).toContain('graceful');
    await eventually(async () => (alive(child.pid) ? undefined : true), 5_000, 'the child gone after SIGTERM');

    const b = start(file);
    const second = await b.first;
    expect(alive(second.pid)).toBe(true);
    b.parent.kill('SIGKILL');
    await b.exited;
    await eventually(async () => (alive(second.pid) ? undefined : true), 2_000, 'the child killed with its parent');
    expect(b.output()).not.toContain('graceful');
  });
});
