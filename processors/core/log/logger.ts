import { pino, type Logger } from 'pino';
import { withoutQuery } from '../http/url.js';

export type { Logger };

/**
 * Paths redacted in every log line: credentials in config objects, connection strings,
 * and HTTP auth headers. pino's redaction is path-based, so secrets must live under
 * these names wherever they are logged.
 */
export const REDACTED_PATHS = [
  '*.password',
  '*.saslPassword',
  '*.secretAccessKey',
  '*.sessionToken',
  '*.apiKey',
  'config.*.password',
  'config.*.saslPassword',
  'config.*.secretAccessKey',
  'config.database.url',
  'database.url',
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'headers.authorization',
  'headers["x-api-key"]',
];

/**
 * Structured JSON logs to stdout, a given stream, or appended to a file (`file`: the
 * folder is created; several processes may append to the same file), written at once (a
 * line written just before process.exit() is not lost, also in the worker thread `sluice
 * live` and `sluice files` run in, core/runtime/v8-heap.ts, where an asynchronous write still
 * pending when the thread exits never happens), with secrets
 * redacted, and every `url` field logged without its query string (it may carry a key or
 * a signature).
 */
export function createLogger(options: { name: string; level?: string; destination?: NodeJS.WritableStream; file?: string | undefined }): Logger {
  return pino(
    {
      name: options.name,
      level: options.level ?? 'info',
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      serializers: { url: (url: unknown) => (typeof url === 'string' ? withoutQuery(url) : url) },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? pino.destination(options.file ? { dest: options.file, append: true, mkdir: true, sync: true } : { dest: 1, sync: true }),
  );
}
