import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ROOT } from './build.js';

/** What /readyz answered: its status code and the per-check results. */
export interface Readiness {
  status: number;
  checks: Record<string, string>;
}

/**
 * A `sluice <command>` child process (the built CLI, as an operator runs it), its output in
 * test-results/<name>.log; the caller builds dist/ first (buildDist). It can be killed
 * like a crash (SIGKILL) or stopped (SIGTERM), and its /readyz and log read while it runs.
 */
export class SluiceProcess {
  private child: ChildProcess | undefined;
  exitCode: number | null = null;
  readonly log: string;

  constructor(
    readonly name: string,
    private readonly args: string[],
    private readonly env: Record<string, string>,
    readonly port: number,
    /** Another copy of the CLI (bin/sluice.mjs) and the folder it runs in (default: this checkout's, from its root). */
    private readonly at: { bin?: string; cwd?: string } = {},
  ) {
    this.log = join(ROOT, 'test-results', `${name}.log`);
    mkdirSync(dirname(this.log), { recursive: true });
  }

  start(): this {
    const out = createWriteStream(this.log, { flags: 'a' });
    this.exitCode = null;
    const child = spawn(process.execPath, [this.at.bin ?? join(ROOT, 'bin/sluice.mjs'), ...this.args], {
      cwd: this.at.cwd ?? ROOT,
      env: { ...process.env, KAFKAJS_NO_PARTITIONER_WARNING: '1', ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // Both streams into one file, ended once both are done ('close'): the first stream to end must not end the file under the other (its last lines were lost: write after end).
    child.stdout!.pipe(out, { end: false });
    child.stderr!.pipe(out, { end: false });
    child.once('close', () => out.end());
    child.once('exit', (code, signal) => {
      this.exitCode = code ?? (signal ? 128 : null);
    });
    this.child = child;
    return this;
  }

  /** The child's process id (to read /proc/<pid>/status). */
  get pid(): number {
    if (!this.child?.pid) throw new Error(`${this.name} is not started`);
    return this.child.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.exitCode === null;
  }

  /** The log lines (pino JSON) written so far, parsed; other lines are skipped. */
  logLines(): { level: string; msg: string; [k: string]: unknown }[] {
    let text = '';
    try {
      text = readFileSync(this.log, 'utf8');
    } catch {
      return [];
    }
    return text
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .flatMap((l) => {
        try {
          return [JSON.parse(l)];
        } catch {
          return [];
        }
      });
  }

  async readiness(): Promise<Readiness | undefined> {
    try {
      const res = await fetch(`http://127.0.0.1:${this.port}/readyz`);
      const body = (await res.json()) as { checks?: Record<string, string> };
      return { status: res.status, checks: body.checks ?? {} };
    } catch {
      return undefined;
    }
  }

  kill(signal: NodeJS.Signals): Promise<number | null> {
    const child = this.child;
    if (!child || this.exitCode !== null) return Promise.resolve(this.exitCode);
    return new Promise((resolve) => {
      child.once('exit', (code, sig) => resolve(code ?? (sig ? 128 : null)));
      child.kill(signal);
    });
  }
}
