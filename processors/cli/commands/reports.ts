import { Command } from 'commander';
import { describeSettings } from '../../core/config/settings.js';
import { startReports } from '../../reports/reports.js';
import { reportsSettings } from '../../reports/settings.js';

/** `sluice reports`: the report processor, the REST shim and the monthly schedule. */
export function reportsCommand(): Command {
  return new Command('reports')
    .description('run the report processor and its REST shim: report-requests -> the Parquet lake -> CSV/JSON on S3 -> report-status and a link by email/webhook')
    .addHelpText(
      'after',
      `\nIts settings (beside the shared ones of \`sluice config docs\`):\n\n${describeSettings(reportsSettings)}\n\nServes POST /reports/generate, GET /reports/{id}, /openapi.json, /healthz, /readyz and /metrics on SLUICE_REPORTS_HTTP_PORT; SIGTERM/SIGINT stop it gracefully.`,
    )
    .action(async (_opts, cmd: Command) => {
      const file = (cmd.optsWithGlobals() as { config?: string }).config ?? process.env.SLUICE_CONFIG_FILE;
      await startReports({ handleSignals: true, ...(file ? { configFile: file } : {}) });
    });
}
