import { defineComponent } from '../component.js';
import { duration, expression, int, object, type Infer } from '../fields.js';

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
