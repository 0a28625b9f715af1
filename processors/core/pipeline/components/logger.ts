import { defineComponent } from '../component.js';
import { duration, object, oneOf, string, type Infer } from '../fields.js';
import { coreDefault } from './core-defaults.js';

const config = object(
  {
    level: oneOf(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const, { doc: 'Log level (JSON lines on stdout).', ...coreDefault('log', 'level') }),
    file: string({ doc: 'Append the JSON log lines to this file instead of stdout (its folder is created).', optional: true, ...coreDefault('log', 'file') }),
    progress_interval: duration({ doc: 'How often progress is logged: records in/out/dlq, files written, lag.', default: '30s', min: 1000 }),
  },
  { doc: 'Logging.' },
);

export type LoggerConfig = Infer<typeof config>;

export const loggerSection = defineComponent({
  name: 'logger',
  kind: 'section',
  summary: 'Log level and progress reporting.',
  config,
  example: ['level: info', 'progress_interval: 30s'].join('\n'),
});
