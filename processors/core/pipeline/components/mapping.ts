import { defineComponent } from '../component.js';
import { expression, type Infer } from '../fields.js';
import { BLOBLANG_FIX, looksLikeBloblang } from '../redpanda-names.js';

const config = expression({
  doc: 'A JSONata expression evaluated against each record; its result replaces the record.',
  examples: ['{ "event_id": id, "agent_id": subject }'],
});

export type MappingConfig = Infer<typeof config>;

export const mappingProcessor = defineComponent({
  name: 'mapping',
  kind: 'processor',
  summary: 'Replaces each record with the result of a JSONata expression (https://jsonata.org).',
  description: [
    'The expression sees the record as decoded: with `decode: avro_registry` an Avro union of records arrives wrapped, as `{"io.sluice.events.DepositMade": {...}}` (select the branch with `data.*`), timestamps are numbers in their unit and longs beyond 2^53 are BigInt, which plain field references pass through exactly (do not do arithmetic on them).',
    'A record whose expression fails, or yields nothing (undefined), goes to the DLQ with reason `mapping_error` and the error; the rest of the batch goes on.',
  ].join('\n\n'),
  config,
  finish(text, ctx) {
    // `root.id = this.id` compiles as JSONata (a comparison yielding true or false), so only this catches it.
    if (looksLikeBloblang(text)) ctx.report([], 'the mapping compares `root` with `=`: it yields true or false, not a record', BLOBLANG_FIX);
    return text;
  },
  example: ['mapping: |', '  {', '    "event_id": id,', '    "event_type": $substringAfter(type, "io.sluice.agent."),', '    "agent_id": subject,', '    "occurred_at": time', '  }'].join('\n'),
});
