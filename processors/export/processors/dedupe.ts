import { defineComponent } from '../../core/pipeline/component.js';
import { duration, expression, int, object, type Infer } from '../../core/pipeline/fields.js';
import { DLQ_REASONS } from '../../core/dlq/reasons.js';
import { compileExpression } from '../expressions.js';
import { dead, describe, evaluateThen, expressionError, type ProcessorComponent, type StepRun } from './processor.js';

const config = object(
  {
    key: expression({ doc: 'JSONata expression giving the identity of a record (a string or number).', examples: ['event_id'] }),
    cache_size: int({
      doc: 'How many recent keys are remembered: the last half of it at least, all of it at most (two generations of a set); about 100 bytes each. Bounds memory.',
      default: 100000,
      min: 1,
      max: 10_000_000,
    }),
    window: duration({ doc: 'Forget a key this long after it was first seen; unset keeps it until `cache_size` evicts it.', optional: true, examples: ['1h'] }),
  },
  { doc: 'Deduplication settings.' },
);

export type DedupeConfig = Infer<typeof config>;

export const dedupeProcessor = defineComponent({
  name: 'dedupe',
  kind: 'processor',
  summary: 'Drops a record whose key was already seen recently (retries, re-snapshots upstream).',
  description: [
    'Keys are remembered per input partition, in memory: with key = agent_id partitioning, all copies of an event meet in one partition. The cache starts empty on every start and rebalance, so this removes near duplicates only; exactly-once files come from the output\'s deterministic keys, and readers that need certainty count distinct event ids.',
    'A record whose key expression fails or yields nothing goes to the DLQ with reason `dedupe_error`.',
  ].join('\n\n'),
  config,
  example: ['dedupe:', '  key: event_id', '  cache_size: 100000'].join('\n'),
});

export const dedupe: ProcessorComponent<DedupeConfig> = {
  spec: dedupeProcessor,
  create(config, { label }) {
    const expr = compileExpression(config.key);
    return (): StepRun => {
      const seen = new DedupeCache(config.cache_size, config.window);
      return (value) =>
        evaluateThen(
          expr,
          value,
          (key) => {
            if (typeof key !== 'string' && typeof key !== 'number' && typeof key !== 'bigint') {
              return dead(label, DLQ_REASONS.dedupeError, `the key expression yielded ${describe(key)}, not a string or number`);
            }
            return seen.firstSeen(String(key)) ? { kind: 'keep', value } : { kind: 'drop', by: label };
          },
          (error) => dead(label, DLQ_REASONS.dedupeError, expressionError(error)),
        );
    };
  },
};

/**
 * Recently seen keys. Without a window: two generations of a set, the current one and the
 * one before; when the current holds half the capacity it becomes the previous. So the last
 * capacity/2 to capacity keys are remembered, at one set insertion a key (an LRU's
 * delete-and-reinsert per record cost a fifth of the runner's time). With a window: each
 * key's first-seen time, forgotten after the window or beyond the capacity (oldest first).
 */
export class DedupeCache {
  private current = new Set<string>();
  private previous = new Set<string>();
  private readonly times = new Map<string, number>();

  constructor(
    private readonly capacity: number,
    private readonly windowMs: number | undefined,
    private readonly now: () => number = Date.now,
  ) {}

  /** True the first time a key is seen (as far as the cache remembers); records it. */
  firstSeen(key: string): boolean {
    if (this.windowMs !== undefined) return this.firstSeenWithin(key, this.windowMs);
    if (this.current.has(key) || this.previous.has(key)) return false;
    this.current.add(key);
    if (this.current.size >= Math.max(1, this.capacity >> 1)) {
      this.previous = this.current;
      this.current = new Set();
    }
    return true;
  }

  private firstSeenWithin(key: string, windowMs: number): boolean {
    const t = this.now();
    const at = this.times.get(key);
    if (at !== undefined && t - at < windowMs) return false;
    this.times.delete(key);
    this.times.set(key, t);
    if (this.times.size > this.capacity) this.times.delete(this.times.keys().next().value!);
    return true;
  }

  get size(): number {
    return this.windowMs !== undefined ? this.times.size : this.current.size + this.previous.size;
  }
}
