import { defineComponent } from '../../core/pipeline/component.js';
import { list, string, type Infer } from '../../core/pipeline/fields.js';
import { DLQ_REASONS } from '../../core/dlq/reasons.js';
import { objectStep, type ProcessorComponent } from './processor.js';

/** A field name or a dotted path to a nested one (`a.b`). */
export const FIELD_PATH = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;
export const FIELD_PATH_FIX = 'write a field name or a dotted path such as data.customer_id';

const config = list(string({ doc: 'a field name or dotted path', pattern: FIELD_PATH, patternFix: FIELD_PATH_FIX }), {
  doc: 'The fields to keep, in this order; a dotted path keeps the nested field under its parents.',
  minItems: 1,
  unique: true,
  examples: [['event_id', 'agent_id', 'amount_minor']],
});

export type SelectConfig = Infer<typeof config>;

export const selectProcessor = defineComponent({
  name: 'select',
  kind: 'processor',
  summary: 'Keeps only the listed fields of each record.',
  description: 'A listed field the record lacks is simply absent from the result (the output writes null where its column is nullable). A record that is not an object goes to the DLQ with reason `select_error`.',
  config,
  example: 'select: [event_id, event_type, agent_id, amount_minor, occurred_at]',
});

export const select: ProcessorComponent<SelectConfig> = {
  spec: selectProcessor,
  create: (paths, { label }) => () => (value) => objectStep(label, DLQ_REASONS.selectError, value, (o) => selectFields(o, paths)),
};

/** Keeps the listed (possibly dotted) paths, in list order. */
export function selectFields(record: Record<string, unknown>, paths: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const path of paths) {
    const parts = path.split('.');
    let from: unknown = record;
    for (const p of parts) from = from !== null && typeof from === 'object' ? (from as Record<string, unknown>)[p] : undefined;
    if (from === undefined) continue;
    let to = out;
    for (const p of parts.slice(0, -1)) {
      if (to[p] === null || typeof to[p] !== 'object') to[p] = {};
      to = to[p] as Record<string, unknown>;
    }
    to[parts.at(-1)!] = from;
  }
  return out;
}
