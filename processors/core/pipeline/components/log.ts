import { defineComponent } from '../component.js';
import { expression, object, oneOf, type Infer } from '../fields.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;

const config = object(
  {
    level: oneOf(LOG_LEVELS, { doc: 'Level of the log line; below the pipeline\'s `logger.level` nothing is written (and the message is not evaluated).', default: 'info' }),
    message: expression({
      doc: 'JSONata expression whose result is logged as `record` (an object or a value); unset logs the whole record.',
      optional: true,
      examples: ['{ "event_id": event_id, "type": event_type }'],
    }),
  },
  { doc: 'Log settings.' },
);

export type LogConfig = Infer<typeof config>;

export const logProcessor = defineComponent({
  name: 'log',
  kind: 'processor',
  summary: 'Writes a JSON log line for each record (the record, or an expression of it) and passes the record on unchanged.',
  description: [
    "For looking at records as they pass, in a terminal (`sluice test`, a stdin pipeline) or at `debug` in production, where a `filter` in front keeps the volume down: one line per record is costly at 100k records/s. Lines go to the pipeline's pino logger with the processor's `label`.",
    'A message expression that fails logs a warning with the error; the record goes on (logging never sends a record to the DLQ).',
  ].join('\n\n'),
  config,
  example: ['log:', '  level: debug', '  message: \'{ "event_id": event_id, "type": event_type }\''].join('\n'),
});
