import { Command } from 'commander';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConnectClient, loadConnectorSpec, pgVarsFromUrl } from '../../core/connect/client.js';
import { envNameFor } from '../../core/config/settings.js';
import { createPool } from '../../core/db/pool.js';
import { ConfigError } from '../../core/errors/errors.js';
import { withRetry } from '../../core/errors/retry.js';
import type { CoreSettings } from '../../core/config/core-settings.js';
import { createKafka } from '../../core/kafka/client.js';
import { formatDuration, parseDuration } from '../../core/pipeline/units.js';
import { checkConnectors, runConnectorMonitor, windowFor } from '../../ops/connector-monitor.js';
import { cliSettings } from '../context.js';

export const CONNECTORS_DIR = fileURLToPath(new URL('../../../../connectors/debezium', import.meta.url));

function connectorFiles(files: string[]): string[] {
  if (files.length > 0) return files;
  return readdirSync(CONNECTORS_DIR)
    .filter((f) => f.endsWith('.json'))
    .map((f) => join(CONNECTORS_DIR, f));
}

/**
 * The values of the connector files' `${...}` placeholders: the environment, the libpq
 * variables of the database URL, and the replication factor of the topics Sluice creates
 * (SLUICE_KAFKA_TOPIC_REPLICATION_FACTOR, also when it is set in --config), which Kafka
 * Connect uses for the CDC topic.
 */
export function connectorVars(settings: CoreSettings): Record<string, string | undefined> {
  return { ...process.env, ...pgVarsFromUrl(settings.database.url), SLUICE_KAFKA_TOPIC_REPLICATION_FACTOR: String(settings.kafka.topicReplicationFactor) };
}

export function connectorsCommand(): Command {
  const cmd = new Command('connectors').description('Debezium connectors on Kafka Connect (connectors/debezium/*.json)');
  cmd
    .command('apply')
    .description('create or update connectors idempotently (PUT /connectors/NAME/config); ${PG*} come from the database URL')
    .argument('[files...]', 'connector files (default: every connectors/debezium/*.json)')
    .action(async (files: string[], _opts, c: Command) => {
      const settings = cliSettings(c);
      const client = new ConnectClient(settings.connect.url);
      const vars = connectorVars(settings);
      for (const file of connectorFiles(files)) {
        const spec = loadConnectorSpec(file, vars);
        const { created } = await withRetry(() => client.apply(spec));
        console.log(`${spec.name}: ${created ? 'created' : 'updated (unchanged config is a no-op)'}`);
      }
    });
  cmd
    .command('status')
    .description('whether each connector really streams: its state and tasks, its replication slot and its topics, sampled twice a window apart')
    .argument('[files...]', 'connector files (default: every connectors/debezium/*.json)')
    .option('--window <duration>', 'time between the two samples, e.g. 15s (default: the connector\'s heartbeat.interval.ms + 2 s, at least 5 s)')
    .option('--serve', 'keep checking every window and serve the result as Prometheus metrics (SLUICE_CONNECTORS_MONITOR_HTTP_PORT, default 9468)')
    .addHelpText(
      'after',
      [
        '',
        'Kafka Connect can say RUNNING while nothing is streamed: a connector whose topic cannot be created',
        '(auto-creation off, no topic.creation.* settings, no ACL) retries its sends forever without an error,',
        'and its replication slot keeps all WAL since, until the Postgres disk is full. So this command reads',
        'the connector status, pg_replication_slots (retained WAL = pg_current_wal_lsn() - restart_lsn, pending',
        '= pg_current_wal_lsn() - confirmed_flush_lsn) and the end offsets of the change and heartbeat topics,',
        'twice, and says STALLED when WAL grew, the confirmed position stood still and no record reached a topic.',
        '',
        'Exit 0 when every connector streams; 1 when one is not applied, not RUNNING, or STALLED (the reason is printed).',
        `Settings: ${[envNameFor(['connect', 'url']), envNameFor(['database', 'url']), envNameFor(['kafka', 'brokers'])].join(', ')}.`,
      ].join('\n'),
    )
    .action(async (files: string[], opts: { window?: string; serve?: boolean }, c: Command) => {
      const settings = cliSettings(c);
      const vars = connectorVars(settings);
      const specs = connectorFiles(files).map((file) => loadConnectorSpec(file, vars));
      let windowMs: number | undefined;
      if (opts.window !== undefined) {
        windowMs = parseDuration(opts.window);
        if (windowMs === undefined || windowMs <= 0) throw new ConfigError([{ source: '--window', setting: 'window', message: `"${opts.window}" is no duration`, fix: 'give one such as 15s or 1m' }]);
      }
      if (opts.serve) {
        const file = (c.optsWithGlobals() as { config?: string }).config ?? process.env.SLUICE_CONFIG_FILE;
        await runConnectorMonitor({ specs, ...(windowMs !== undefined ? { windowMs } : {}), ...(file ? { configFile: file } : {}) });
        return;
      }
      const connect = new ConnectClient(settings.connect.url);
      const db = createPool(settings.database.url, { max: 2, applicationName: 'sluice-connectors-status' });
      const kafka = createKafka(settings.kafka, { region: settings.s3.region, clientId: `${settings.kafka.clientId}-connectors-status` });
      const admin = kafka.admin();
      await admin.connect();
      try {
        const window = windowFor(specs, windowMs);
        console.log(`sampling ${specs.map((s) => s.name).join(', ')} twice, ${formatDuration(window)} apart...`);
        const { assessments, samples } = await withRetry(() => checkConnectors({ connect, db, admin }, specs, window), { policy: { maxAttempts: 3 } });
        assessments.forEach((a, i) => {
          const status = samples[i]!.status;
          const tasks = status ? status.tasks.map((t) => `task ${t.id} ${t.state}`).join(', ') || 'no tasks yet' : '';
          console.log(`${a.name}: ${a.verdict}${status ? ` (connector ${status.connector.state}; ${tasks})` : ''}`);
          for (const r of a.reasons) console.log(`  ${r}`);
          for (const t of status?.tasks.filter((t) => t.state === 'FAILED') ?? []) console.log(t.trace?.split('\n').slice(0, 5).join('\n'));
        });
        process.exitCode = assessments.every((a) => a.healthy) ? 0 : 1;
      } finally {
        await admin.disconnect();
        await db.end();
      }
    });
  return cmd;
}
