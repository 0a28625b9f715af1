import type { Logger } from '../log/logger.js';
import { withTimeout } from '../runtime/timeouts.js';

type Closer = { name: string; close: () => Promise<void> | void };

/**
 * Graceful shutdown on SIGTERM/SIGINT: closers run in reverse registration order (stop
 * consuming, flush sinks, commit, then close connections), each bounded by a deadline so
 * a hung dependency cannot keep the process alive forever. A second signal exits at once.
 */
export class Shutdown {
  private readonly closers: Closer[] = [];
  private stopping: Promise<void> | undefined;
  readonly signal: AbortSignal;
  private readonly controller = new AbortController();

  constructor(
    private readonly logger: Logger,
    private readonly deadlineMs = 30_000,
    private readonly exit: (code: number) => void = (code) => process.exit(code),
  ) {
    this.signal = this.controller.signal;
  }

  /** Registers something to close; the last registered closes first. */
  add(name: string, close: () => Promise<void> | void): this {
    this.closers.push({ name, close });
    return this;
  }

  /** Installs the signal handlers. */
  install(): this {
    for (const sig of ['SIGTERM', 'SIGINT'] as const) {
      process.on(sig, () => {
        if (this.stopping) {
          this.logger.warn({ signal: sig }, 'second signal: exiting now');
          this.exit(130);
          return;
        }
        this.logger.info({ signal: sig }, 'shutting down');
        void this.run().then((ok) => this.exit(ok ? 0 : 1));
      });
    }
    return this;
  }

  /** Runs every closer once; resolves false when one failed or overran the deadline. */
  async run(): Promise<boolean> {
    let ok = true;
    this.stopping ??= (async () => {
      this.controller.abort();
      for (const closer of [...this.closers].reverse()) {
        const started = Date.now();
        try {
          await withTimeout(Promise.resolve(closer.close()), this.deadlineMs, `did not close within ${this.deadlineMs} ms`);
          this.logger.info({ closer: closer.name, ms: Date.now() - started }, 'closed');
        } catch (error) {
          ok = false;
          this.logger.error({ closer: closer.name, err: error }, 'close failed');
        }
      }
    })();
    await this.stopping;
    return ok;
  }
}
