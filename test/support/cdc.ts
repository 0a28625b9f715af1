import { ConnectClient, loadConnectorSpec, pgVarsFromUrl, type ConnectorSpec } from '../../processors/core/connect/client.js';
import type { CoreSettings } from '../../processors/core/config/core-settings.js';
import type { Kafka } from 'kafkajs';
import { debeziumTopics } from '../../processors/core/kafka/topic-plan.js';
import { connectorVars } from '../../processors/cli/commands/connectors.js';
import { createTopics } from './kafka.js';
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
  await waitForConnectorRunning(connect, spec.name);
  return { connect, spec };
}

/**
 * Waits until the connector and its tasks are RUNNING; a FAILED one stops the wait at once
 * with its trace's first lines (a password authentication failure there means the Connect
 * worker cannot resolve the password reference: started before config providers were
 * enabled, restart it with `infra/local/stack down connect && infra/local/stack up connect`).
 */
export async function waitForConnectorRunning(connect: ConnectClient, name: string, timeoutMs = 60_000): Promise<void> {
  let failure: string | undefined;
  await eventually(async () => {
    const s = await connect.status(name);
    const failed = [s?.connector, ...(s?.tasks ?? [])].find((t) => t?.state === 'FAILED');
    if (failed) {
      failure = failed.trace?.split('\n').slice(0, 3).join(' | ') ?? 'no trace';
      return true;
    }
    return s?.connector.state === 'RUNNING' && s.tasks.length > 0 && s.tasks.every((t) => t.state === 'RUNNING') ? true : undefined;
  }, timeoutMs, `connector ${name} RUNNING`);
  if (failure) {
    throw new Error(
      `connector ${name} FAILED: ${failure}${/password authentication/i.test(failure) ? ' (the Connect worker does not resolve the password reference: restart it with infra/local/stack down connect && infra/local/stack up connect)' : ''}`,
    );
  }
}

/**
 * Creates the CDC topic (and Debezium's heartbeat topic) when absent, as Kafka Connect
 * creates them from the shipped connector's topic.creation settings (the topic plan's
 * entries): for a test that starts the normalizer before Debezium's first change.
 */
export async function ensureCdcTopics(kafka: Kafka, settings: CoreSettings): Promise<void> {
  const spec = loadConnectorSpec(connectorFile, connectorVars(settings));
  await createTopics(kafka, debeziumTopics({ kafka: settings.kafka, connectors: [spec] }));
}
