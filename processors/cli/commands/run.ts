import { Command } from 'commander';
import { startExport } from '../../export/export.js';
import { exportPipelineFiles } from './lint.js';

/**
 * `sluice run FILE...`: the export runner. Each file is one pipeline (its own consumer
 * group); they run side by side in this process behind one health and metrics port.
 */
export function runCommand(): Command {
  return new Command('run')
    .description('run export pipelines: Kafka -> processors -> Parquet/JSONL/CSV files on S3, offsets committed after each upload, a DLQ for bad records')
    .argument('[files...]', 'pipeline files (default: every connectors/exports/*.yaml)')
    .addHelpText(
      'after',
      [
        '',
        'Every file is checked first as `sluice lint` does; a problem stops the start (exit 78) with file:line, path and fix.',
        'Brokers, registry, S3 endpoint and credentials default to the SLUICE_* environment (`sluice docs`).',
        'Serves /healthz, /readyz and /metrics on the first file\'s http.port (SLUICE_EXPORT_HTTP_PORT, default 9466).',
        'SIGTERM/SIGINT: open batches are flushed and committed, then the group is left. Reference: sluice docs',
      ].join('\n'),
    )
    .action(async (files: string[]) => {
      const targets = files.length > 0 ? files : exportPipelineFiles();
      await startExport({ files: targets, handleSignals: true });
    });
}
