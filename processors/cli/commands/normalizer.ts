import { Command } from 'commander';
import { describeSettings } from '../../core/config/settings.js';
import { runNormalizer } from '../../normalizer/normalizer.js';
import { normalizerSettings } from '../../normalizer/settings.js';

/**
 * `sluice normalizer`: the long-running CDC -> Avro events processor. Settings come from
 * the environment or --config (env wins); --help lists the normalizer's own.
 */
export function normalizerCommand(): Command {
  return new Command('normalizer')
    .description(
      'run the normalizer: Debezium changes of staging.agent_events -> contract-checked Avro events (key agent_id) and a DLQ, exactly once in Kafka transactions',
    )
    .addHelpText(
      'after',
      `\nIts settings (beside the shared ones of \`sluice config docs\`):\n\n${describeSettings(normalizerSettings)}\n\nServes /healthz, /readyz and /metrics on SLUICE_NORMALIZER_HTTP_PORT; SIGTERM/SIGINT stop it gracefully.`,
    )
    .action(async (_opts, cmd: Command) => {
      const file = (cmd.optsWithGlobals() as { config?: string }).config ?? process.env.SLUICE_CONFIG_FILE;
      await runNormalizer(file ? { configFile: file } : {});
    });
}
