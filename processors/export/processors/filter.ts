import { defineComponent } from '../../core/pipeline/component.js';
import { expression, type Infer } from '../../core/pipeline/fields.js';
import { DLQ_REASONS } from '../../core/dlq/reasons.js';
import { compileExpression } from '../expressions.js';
import { dead, describe, evaluateThen, expressionError, type ProcessorComponent, type StepRun } from './processor.js';

const config = expression({
  doc: 'A JSONata expression evaluated against each record: `true` keeps it, `false` drops it.',
  examples: ['event_type != "customer_onboarded"'],
});

export type FilterConfig = Infer<typeof config>;

export const filterProcessor = defineComponent({
  name: 'filter',
  kind: 'processor',
  summary: 'Keeps the records for which a JSONata expression is true and drops those for which it is false.',
  description:
    'A dropped record is not an error: its offset is committed with the batch. A result that is not a boolean (including nothing, for a missing field: write `$exists(x) and ...`), or an evaluation error, sends the record to the DLQ with reason `filter_error`.',
  config,
  example: 'filter: event_type != "customer_onboarded"',
});

export const filter: ProcessorComponent<FilterConfig> = {
  spec: filterProcessor,
  create(text, { label }) {
    const expr = compileExpression(text);
    const run: StepRun = (value) =>
      evaluateThen(
        expr,
        value,
        (result) => {
          if (result === true) return { kind: 'keep', value };
          if (result === false) return { kind: 'drop', by: label };
          return dead(label, DLQ_REASONS.filterError, `the filter yielded ${describe(result)}, not true or false`);
        },
        (error) => dead(label, DLQ_REASONS.filterError, expressionError(error)),
      );
    return () => run;
  },
};
