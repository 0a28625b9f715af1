import { DLQ_HEADERS } from '../../dlq/dead-letter.js';
import { defineComponent } from '../component.js';
import { bool, map, object, string, type Infer } from '../fields.js';
import { TOPIC_FIX, TOPIC_NAME } from '../../kafka/topics.js';

const config = object(
  {
    topic: string({ doc: 'Dead-letter topic.', pattern: TOPIC_NAME, patternFix: TOPIC_FIX, examples: ['sluice.agent-events.export.dlq'] }),
    include_original: bool({
      doc: 'Write the original record (key, value bytes and headers, untouched) to the DLQ; `false` writes the key and the reason headers only (for data that must not be copied).',
      default: true,
    }),
    headers: map(string({ doc: 'header value' }), {
      doc: `Extra headers on every dead letter, e.g. the owning team. Names starting with \`sluice.dlq.\` are Sluice's own (${Object.values(DLQ_HEADERS).map((h) => `\`${h}\``).join(', ')}).`,
      default: {},
      keyPattern: /^(?!sluice\.dlq\.)[\x21-\x7e]+$/,
      keyFix: 'use a printable name without spaces that does not start with sluice.dlq. (reserved for the reason headers)',
      examples: [{ 'sluice.pipeline': 'lake' }],
    }),
  },
  { doc: 'Dead-letter queue.', examples: [{ topic: 'sluice.agent-events.export.dlq' }] },
);

export type DlqConfig = Infer<typeof config>;

export const dlqSection = defineComponent({
  name: 'dlq',
  kind: 'section',
  summary: 'Where records that cannot be processed go: a Kafka topic, with the reason in headers.',
  description: [
    "A record that fails to decode, to map, to filter or to be written goes to this topic with the `sluice.dlq.*` headers (reason code, error text, source topic, partition and offset, processor), as the normalizer's dead letters do; the rest of the batch goes on, and its offset is committed with the batch once the dead letter is acknowledged.",
    'Transient faults (broker or S3 unavailable) never go here: they block and retry.',
  ].join('\n\n'),
  config,
  example: ['topic: sluice.agent-events.export.dlq', 'include_original: true', 'headers:', '  sluice.pipeline: lake'].join('\n'),
});
