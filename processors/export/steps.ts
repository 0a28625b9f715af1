import { createLogger, type Logger } from '../core/log/logger.js';
import type { ProcessorConfig } from '../core/pipeline/pipeline.js';
import { processorComponent } from './processors/index.js';
import type { StepOutcome, StepRun } from './processors/processor.js';

/**
 * The `pipeline.processors` of a pipeline file, compiled once (each by its component's
 * constructor, processors/export/processors/): each record goes through them in order and
 * comes out kept (possibly replaced), dropped (filter, dedupe) or dead (a DLQ case with a
 * reason code and the error). A dead record never stops the batch.
 *
 * State (the dedupe caches) is per input partition and is thrown away whenever the
 * partition rewinds to its committed offset (rebalance, failed flush), so that a replayed
 * record is not taken for a duplicate of itself.
 */

export type { StepOutcome } from './processors/processor.js';

export interface PartitionSteps {
  /** Synchronous when every step answered synchronously (compiled expressions), a promise otherwise. */
  run(value: unknown): StepOutcome | Promise<StepOutcome>;
}

interface Step {
  label: string;
  /** A fresh per-partition instance (dedupe keeps its cache there). */
  instance(): StepRun;
}

export class StepChain {
  private readonly steps: Step[];

  /** `logger`: where `log` processors write (a pino logger named `export` when not given). */
  constructor(configs: readonly ProcessorConfig[], logger?: Logger) {
    let log: Logger | undefined = logger;
    const logs = () => (log ??= createLogger({ name: 'export' }));
    this.steps = configs.map((c) => ({ label: c.label, instance: processorComponent(c.type).create(c.config, { label: c.label, logger: logs }) }));
  }

  get labels(): string[] {
    return this.steps.map((s) => s.label);
  }

  /** The chain for one partition, with empty state. */
  forPartition(): PartitionSteps {
    const runs = this.steps.map((s) => s.instance());
    const from = (start: number, value: unknown): StepOutcome | Promise<StepOutcome> => {
      let current = value;
      for (let i = start; i < runs.length; i++) {
        const outcome = runs[i]!(current);
        // Only a step that had to ask jsonata answers with a promise; the rest of the chain follows it.
        if (outcome instanceof Promise) return outcome.then((o) => (o.kind === 'keep' ? from(i + 1, o.value) : o));
        if (outcome.kind !== 'keep') return outcome;
        current = outcome.value;
      }
      return { kind: 'keep', value: current };
    };
    return { run: (value) => from(0, value) };
  }
}
