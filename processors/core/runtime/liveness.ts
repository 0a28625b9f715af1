import type { HealthServer } from '../http/health-server.js';
import type { ProcessorContext } from './processor.js';
import type { SettingsSpec } from '../config/settings.js';

/** A consume loop must show some activity (fetch, heartbeat, batch, retry) this often to be live. */
export const LIVENESS_WINDOW_MS = 120_000;

/**
 * /healthz's liveness for a processor built around one consume loop: live while the loop
 * shows activity within the window (waiting for a dependency at start-up is not a hang),
 * not live for good once the loop stopped with an error.
 */
export class LoopLiveness {
  private lastActivity = Date.now();
  private fatal: Error | undefined;

  constructor(
    ctx: Pick<ProcessorContext<SettingsSpec>, 'startup' | 'shutdown'>,
    private readonly server: HealthServer,
    options: { windowMs?: number; checkEveryMs?: number; onCheck?: () => void } = {},
  ) {
    const windowMs = options.windowMs ?? LIVENESS_WINDOW_MS;
    const timer = setInterval(() => {
      if (!ctx.startup.isReady) this.lastActivity = Date.now();
      options.onCheck?.();
      if (this.fatal) return server.setLive(false, `the consume loop stopped: ${this.fatal.message}`);
      const idle = Date.now() - this.lastActivity;
      server.setLive(idle < windowMs, `no consume-loop activity for ${Math.round(idle / 1000)} s`);
    }, options.checkEveryMs ?? 5_000);
    timer.unref();
    ctx.shutdown.add('liveness monitor', () => clearInterval(timer));
  }

  /** The loop did something: a fetch, a heartbeat, a batch, a retry. */
  readonly touch = (): void => {
    this.lastActivity = Date.now();
  };

  /** The loop stopped for good: not live from now on. */
  readonly fail = (error: Error): void => {
    this.fatal = error;
    this.server.setLive(false, `the consume loop stopped: ${error.message}`);
  };
}
