import { defineComponent } from '../../core/pipeline/component.js';
import { expression, object, oneOf, type Infer } from '../../core/pipeline/fields.js';
import { compileExpression } from '../expressions.js';
import { evaluateThen, expressionError, plain, type ProcessorComponent, type StepOutcome, type StepRun } from './processor.js';

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

/** Logs the record (or its message expression) and keeps it, whatever the expression does. */
export const log: ProcessorComponent<LogConfig> = {
  spec: logProcessor,
  create(config, { label, logger }) {
    const out = logger().child({ processor: label });
    const level = config.level;
    const expr = config.message !== undefined ? compileExpression(config.message) : undefined;
    const write = (record: unknown) => out[level]({ record: loggable(record) }, 'record');
    const run: StepRun = (value) => {
      if (!out.isLevelEnabled(level)) return { kind: 'keep', value };
      if (!expr) {
        write(value);
        return { kind: 'keep', value };
      }
      const failed = (error: unknown): StepOutcome => {
        out.warn({ error: expressionError(error) }, 'the log message expression failed; the record goes on');
        return { kind: 'keep', value };
      };
      return evaluateThen(expr, value, (result) => (write(expr.compiled ? result : plain(result)), { kind: 'keep', value }), failed);
    };
    return () => run;
  },
};

/** Bigints as digit strings and bytes as base64 (JSON cannot hold them). */
function loggable(value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  if (Array.isArray(value)) return value.map(loggable);
  if (value !== null && typeof value === 'object' && !(value instanceof Date)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, loggable(v)]));
  return value;
}
