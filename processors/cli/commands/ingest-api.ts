import { Command, InvalidArgumentError } from 'commander';
import { describeSettings } from '../../core/config/settings.js';
import { startIngestApi } from '../../ingest-api/ingest-api.js';
import { ingestApiSettings } from '../../ingest-api/settings.js';

function portNumber(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) throw new InvalidArgumentError('a port number, 0-65535 (0 picks a free one)');
  return port;
}

/**
 * `sluice ingest-api`: the long-running HTTP front door of staging.agent_events. Settings
 * come from the environment or --config (env wins); --help lists the API's own.
 */
export function ingestApiCommand(): Command {
  return new Command('ingest-api')
    .description('run the ingest API: POST /events validates, enriches and inserts events into staging.agent_events, idempotently by event_id')
    .option('-p, --port <port>', 'listen port (overrides SLUICE_INGEST_API_PORT)', portNumber)
    .option('-c, --config <file>', 'YAML config file (env vars win over it); also SLUICE_CONFIG_FILE')
    .addHelpText(
      'after',
      `\nIts settings (beside the shared ones of \`sluice config docs\`; database.url is the staging database):\n\n${describeSettings(ingestApiSettings)}\n\n` +
        'One port serves the API, /openapi.json, /healthz, /readyz and /metrics; SIGTERM/SIGINT stop it gracefully.',
    )
    .action(async (opts: { port?: number; config?: string }, cmd: Command) => {
      const file = opts.config ?? (cmd.optsWithGlobals() as { config?: string }).config ?? process.env.SLUICE_CONFIG_FILE;
      await startIngestApi({ handleSignals: true, ...(file ? { configFile: file } : {}), ...(opts.port !== undefined ? { port: opts.port } : {}) });
    });
}
