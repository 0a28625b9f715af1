import { Command } from 'commander';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConnectClient, loadConnectorSpec, pgVarsFromUrl } from '../../core/connect/client.js';
import { withRetry } from '../../core/errors/retry.js';
import type { CoreSettings } from '../../core/config/core-settings.js';
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
    .description('state of each connector and its tasks, with the error trace of a failed one')
    .argument('[files...]', 'connector files (default: every connectors/debezium/*.json)')
    .action(async (files: string[], _opts, c: Command) => {
      const settings = cliSettings(c);
      const client = new ConnectClient(settings.connect.url);
      let healthy = true;
      for (const file of connectorFiles(files)) {
        const spec = loadConnectorSpec(file, connectorVars(settings));
        const status = await client.status(spec.name);
        if (!status) {
          healthy = false;
          console.log(`${spec.name}: not applied (run: sluice connectors apply)`);
          continue;
        }
        const tasks = status.tasks.map((t) => `task ${t.id} ${t.state}`).join(', ') || 'no tasks yet';
        console.log(`${spec.name}: ${status.connector.state}; ${tasks}`);
        for (const t of status.tasks.filter((t) => t.state === 'FAILED')) console.log(t.trace?.split('\n').slice(0, 5).join('\n'));
        if (status.connector.state !== 'RUNNING' || status.tasks.some((t) => t.state !== 'RUNNING')) healthy = false;
      }
      process.exitCode = healthy ? 0 : 1;
    });
  return cmd;
}
