import { Command, InvalidArgumentError } from 'commander';
import { loadSettings, describeSettings } from '../../core/config/settings.js';
import { coreSettings } from '../../core/config/core-settings.js';
import { createPool } from '../../core/db/pool.js';
import { createKafka } from '../../core/kafka/client.js';
import { createS3Client } from '../../core/s3/client.js';
import { runLive } from '../../live/live.js';
import { MONTH_PATTERN } from '../../live/months.js';
import { batchRows, compareRows, formatDifference, liveRows, stagingRows, type Difference } from '../../live/reconcile.js';
import { liveSettings } from '../../live/settings.js';
import { loadRules } from '../../reports/rules.js';
import { reportsSettings } from '../../reports/settings.js';
import { cliLogger } from '../context.js';

/** `sluice live`: the long-running live commissions processor and its /live API. */
export function liveCommand(): Command {
  return new Command('live')
    .description('run live commissions: agent events -> per agent and UTC month the report\'s totals and commission, exactly once in Kafka transactions -> compacted topic agent-commissions.live and the /live API (JSON + SSE)')
    .addHelpText(
      'after',
      `\nIts settings (beside the shared ones of \`sluice config docs\`):\n\n${describeSettings(liveSettings)}\n\nServes GET /live/agents/{agent_id}/months/{YYYY-MM}, GET /live/months/{YYYY-MM}, GET /live/stream (SSE), /openapi.json, /healthz, /readyz and /metrics on SLUICE_LIVE_HTTP_PORT; SIGTERM/SIGINT stop it gracefully.`,
    )
    .action(async (_opts, cmd: Command) => {
      const file = (cmd.optsWithGlobals() as { config?: string }).config ?? process.env.SLUICE_CONFIG_FILE;
      await runLive(file ? { configFile: file } : {});
    });
}

const month = (v: string): string => {
  if (!MONTH_PATTERN.test(v)) throw new InvalidArgumentError('a month is YYYY-MM, e.g. 2026-10');
  return v;
};

/** `sluice reconcile --month YYYY-MM`: live == batch report (== staging sums), or the differences and exit 1. */
export function reconcileCommand(): Command {
  return new Command('reconcile')
    .description('compare the live totals of a month (agent-commissions.live) with the batch report of the month (the lake, priced by the report code), agent by agent and cell by cell, and with the staging table\'s sums; prints every difference and exits 1 on any')
    .requiredOption('--month <YYYY-MM>', 'the UTC month', month)
    .option('--no-staging', 'skip the comparison with staging.agent_events (e.g. when the events did not come from it)')
    .addHelpText('after', '\nSettings: the core ones (Kafka, registry, S3, database), SLUICE_LIVE_OUTPUT_TOPIC, SLUICE_REPORTS_LAKE_PREFIX, SLUICE_REPORTS_RULES_FILE and SLUICE_REPORTS_BASE_CURRENCY.\nExit codes: 0 equal, 1 differences found, 2 a comparison could not be made.')
    .action(async (o: { month: string; staging: boolean }, cmd: Command) => {
      const file = (cmd.optsWithGlobals() as { config?: string }).config ?? process.env.SLUICE_CONFIG_FILE;
      const s = loadSettings({ ...coreSettings, ...reportsSettings, ...liveSettings }, file ? { file } : {});
      const logger = cliLogger(s, 'reconcile');
      const kafka = createKafka(s.kafka, { region: s.s3.region, logger, clientId: `${s.kafka.clientId}-reconcile` });
      const s3 = createS3Client(s.s3);
      try {
        const live = await liveRows(kafka, s.registry.url, s.registry, s.live.outputTopic, o.month, logger);
        const batch = await batchRows(s3, s.s3.bucket, s.reports.lakePrefix, o.month, loadRules(s.reports.rulesFile));
        const differences: Difference[] = compareRows('batch', live, batch);
        let stagingAgents: number | undefined;
        if (o.staging) {
          const pool = createPool(s.database.url, { max: 1, applicationName: 'sluice-reconcile' });
          try {
            const staging = await stagingRows(pool, o.month, s.reports.baseCurrency);
            stagingAgents = staging.size;
            differences.push(...compareRows('staging', live, staging));
          } finally {
            await pool.end();
          }
        }
        console.log(`reconcile ${o.month}: live ${live.size} agents, batch report ${batch.size} agents${stagingAgents === undefined ? '' : `, staging ${stagingAgents} agents`}`);
        for (const d of differences) console.log(`  ${formatDifference(d)}`);
        if (differences.length > 0) {
          console.log(`${differences.length} difference(s)`);
          process.exitCode = 1;
        } else {
          console.log(`no difference: every agent's ${o.staging ? 'cells agree in live, the batch report and staging' : 'cells agree in live and the batch report'}`);
        }
      } catch (error) {
        console.error(`sluice reconcile: ${(error as Error).message}`);
        process.exitCode = 2;
      } finally {
        s3.destroy();
      }
    });
}
