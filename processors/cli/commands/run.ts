import { Command } from 'commander';
import { ConfigError } from '../../core/errors/errors.js';
import { parseOverride } from '../../core/pipeline/overrides.js';
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
    .option('--set <path=value>', 'change the pipeline before it runs (repeatable): input=stdin, output=stdout, output.file.directory=./lake, input.generate.count=100', (v: string, all: string[]) => [...all, v], [] as string[])
    .addHelpText(
      'after',
      [
        '',
        'Every file is checked first as `sluice lint` does; a problem stops the start (exit 78) with file:line, path and fix.',
        'Brokers, registry, S3 endpoint and credentials default to the SLUICE_* environment (`sluice docs`).',
        'Serves /healthz, /readyz and /metrics on the first file\'s http.port (SLUICE_EXPORT_HTTP_PORT, default 9466).',
        'SIGTERM/SIGINT: open batches are flushed and committed (flushes still running after 15 s are cut, read again later), then the group is left. Reference: sluice docs',
        '',
        'Try a pipeline in a terminal, with no server (README "Try a pipeline in a terminal"):',
        '  sluice run --set input=stdin --set output=stdout connectors/exports/lake.yaml < connectors/try-it/agent-events.jsonl',
        '  sluice run connectors/try-it/generate-to-file.yaml      # Parquet files under ./try-it-lake',
        'A bare component name replaces the block with its defaults (--set input=stdin). With finite inputs only',
        '(stdin, generate with a count) the run flushes everything at their end and exits 0; dead letters go to stderr.',
      ].join('\n'),
    )
    .action(async (files: string[], o: { set: string[] }) => {
      const targets = files.length > 0 ? files : exportPipelineFiles();
      let overrides;
      try {
        overrides = o.set.map(parseOverride);
      } catch (error) {
        throw new ConfigError([{ source: 'command line', setting: '--set', message: (error as Error).message, fix: 'write --set path=value' }]);
      }
      const running = await startExport({ files: targets, handleSignals: true, overrides });
      if (running.done) {
        await running.done;
        process.exit(0);
      }
    });
}
