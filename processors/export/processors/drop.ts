import { defineComponent } from '../../core/pipeline/component.js';
import { list, string, type Infer } from '../../core/pipeline/fields.js';
import { FIELD_PATH, FIELD_PATH_FIX } from './select.js';
import { DLQ_REASONS } from '../../core/dlq/reasons.js';
import { objectStep, type ProcessorComponent } from './processor.js';

const config = list(string({ doc: 'a field name or dotted path', pattern: FIELD_PATH, patternFix: FIELD_PATH_FIX }), {
  doc: 'The fields to remove; a dotted path removes a nested field.',
  minItems: 1,
  unique: true,
  examples: [['metadata', 'session_id']],
});

export type DropConfig = Infer<typeof config>;

export const dropProcessor = defineComponent({
  name: 'drop',
  kind: 'processor',
  summary: 'Removes the listed fields from each record.',
  description: 'Fields the record lacks are ignored. A record that is not an object goes to the DLQ with reason `drop_error`.',
  config,
  example: 'drop: [metadata]',
});

export const drop: ProcessorComponent<DropConfig> = {
  spec: dropProcessor,
  create: (paths, { label }) => () => (value) => objectStep(label, DLQ_REASONS.dropError, value, (o) => dropFields(o, paths)),
};

/** A copy without the listed (possibly dotted) paths; parents are copied, not mutated. */
export function dropFields(record: Record<string, unknown>, paths: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = { ...record };
  for (const path of paths) {
    const parts = path.split('.');
    let node = out;
    for (const p of parts.slice(0, -1)) {
      const child = node[p];
      if (child === null || typeof child !== 'object' || Array.isArray(child)) {
        node = {};
        break;
      }
      node[p] = { ...(child as Record<string, unknown>) };
      node = node[p] as Record<string, unknown>;
    }
    delete node[parts.at(-1)!];
  }
  return out;
}
