import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const stack = new URL('../../infra/local/stack', import.meta.url).pathname;
const stateDir = process.env.SLUICE_STATE_DIR ?? new URL('../../.sluice', import.meta.url).pathname;
const COMPONENTS = ['postgres', 'kafka', 's3', 'registry', 'connect'];

async function stackCmd(...args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run('bash', [stack, ...args], { timeout: 300_000 });
    return { code: 0, out: stdout + stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, out: (e.stdout ?? '') + (e.stderr ?? '') };
  }
}

const pids = () => Object.fromEntries(COMPONENTS.map((c) => [c, readFileSync(`${stateDir}/run/${c}.pid`, 'utf8').trim()]));
const statusLine = (out: string, c: string) => out.split('\n').find((l) => l.startsWith(c + ' '));

describe('local stack lifecycle', () => {
  it('is all up, and `stack up` again is harmless: exit 0, nothing restarted', async () => {
    const before = await stackCmd('status');
    expect(before.code, before.out).toBe(0);
    for (const c of COMPONENTS) expect(statusLine(before.out, c)).toMatch(/\bup\b/);
    const pidsBefore = pids();
    const again = await stackCmd('up');
    expect(again.code, again.out).toBe(0);
    for (const c of COMPONENTS) expect(again.out).toContain(`${c} already up`);
    expect(pids()).toEqual(pidsBefore);
  });

  it('tells down truthfully: a stopped component and a killed one both show down, and up brings them back', async () => {
    const down = await stackCmd('down', 's3');
    expect(down.code, down.out).toBe(0);
    let status = await stackCmd('status');
    expect(status.code).not.toBe(0);
    expect(statusLine(status.out, 's3')).toMatch(/\bdown\b/);
    expect(statusLine(status.out, 'kafka')).toMatch(/\bup\b/);

    expect((await stackCmd('up', 's3')).code).toBe(0);
    // A crash leaves a stale pid file behind: status must not trust it.
    const pid = Number(readFileSync(`${stateDir}/run/s3.pid`, 'utf8'));
    process.kill(-pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 1000));
    status = await stackCmd('status');
    expect(status.code).not.toBe(0);
    expect(statusLine(status.out, 's3')).toMatch(/\bdown\b/);

    const up = await stackCmd('up');
    expect(up.code, up.out).toBe(0);
    status = await stackCmd('status');
    expect(status.code, status.out).toBe(0);
  });

  it('names the fix when a port is taken', async () => {
    const { createServer } = await import('node:net');
    const server = createServer().listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const port = (server.address() as { port: number }).port;
    try {
      const { code, out } = await (async () => {
        try {
          const r = await run('bash', [stack, 'up', 's3'], {
            env: { ...process.env, SLUICE_S3_PORT: String(port), SLUICE_STATE_DIR: `${stateDir}-porttest` },
            timeout: 120_000,
          });
          return { code: 0, out: r.stdout + r.stderr };
        } catch (error) {
          const e = error as { code: number; stdout: string; stderr: string };
          return { code: e.code, out: e.stdout + e.stderr };
        }
      })();
      expect(code).not.toBe(0);
      expect(out).toContain(`port ${port} needed by s3 is taken`);
      expect(out).toContain('set SLUICE_S3_PORT');
    } finally {
      server.close();
      await run('rm', ['-rf', `${stateDir}-porttest`]);
    }
  });
});
