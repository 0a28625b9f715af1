import { defineComponent } from '../component.js';
import { expression, type Infer } from '../fields.js';

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
