import { defineComponent } from '../component.js';
import { list, string, type Infer } from '../fields.js';
import { FIELD_PATH, FIELD_PATH_FIX } from './select.js';

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
