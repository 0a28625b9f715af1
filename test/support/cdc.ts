import { ConnectClient, loadConnectorSpec, pgVarsFromUrl, type ConnectorSpec } from '../../processors/core/connect/client.js';
import type { CoreSettings } from '../../processors/core/config/core-settings.js';
import { eventually, hostPortOf, requireServer } from './servers.js';

const connectorFile = new URL('../../connectors/debezium/staging-agent-events.json', import.meta.url).pathname;

/**
 * Requires every server of the CDC path (naming any that is down), applies the shipped
 * Debezium connector and waits until it and its tasks are RUNNING.
 */
export async function ensureCdcConnector(settings: CoreSettings): Promise<{ connect: ConnectClient; spec: ConnectorSpec }> {
  await requireServer('PostgreSQL', hostPortOf(settings.database.url));
  await requireServer('Kafka broker', settings.kafka.brokers[0]!);
  await requireServer('schema registry', hostPortOf(settings.registry.url));
  const connect = new ConnectClient(settings.connect.url);
  await requireServer('Kafka Connect', hostPortOf(settings.connect.url), async () => {
    const plugins = await connect.plugins();
    if (!plugins.some((p) => p.class === 'io.debezium.connector.postgresql.PostgresConnector')) {
      throw new Error('the Debezium PostgreSQL plugin is not installed');
    }
  });
  const spec = loadConnectorSpec(connectorFile, pgVarsFromUrl(settings.database.url));
  await connect.apply(spec);
  await eventually(async () => {
    const s = await connect.status(spec.name);
    return s?.connector.state === 'RUNNING' && s.tasks.length > 0 && s.tasks.every((t) => t.state === 'RUNNING') ? s : undefined;
  }, 60_000, `connector ${spec.name} RUNNING`);
  return { connect, spec };
}
