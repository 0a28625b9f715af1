import { defineComponent } from '../../core/pipeline/component.js';
import { expression, type Infer } from '../../core/pipeline/fields.js';
import { BLOBLANG_FIX, looksLikeBloblang } from '../../core/pipeline/redpanda-names.js';
import { DLQ_REASONS } from '../../core/dlq/reasons.js';
import { compileExpression } from '../expressions.js';
import { dead, evaluateThen, expressionError, plain, type ProcessorComponent, type StepRun } from './processor.js';

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

export const mapping: ProcessorComponent<MappingConfig> = {
  spec: mappingProcessor,
  create(text, { label }) {
    const expr = compileExpression(text);
    const run: StepRun = (value) =>
      evaluateThen(
        expr,
        value,
        (result) => {
          if (result === undefined) return dead(label, DLQ_REASONS.mappingError, 'the mapping yielded nothing (undefined): a field it starts from is missing');
          // Compiled results are plain already; jsonata's carry sequence flags and null prototypes.
          return { kind: 'keep', value: expr.compiled ? result : plain(result) };
        },
        (error) => dead(label, DLQ_REASONS.mappingError, expressionError(error)),
      );
    return () => run;
  },
};
