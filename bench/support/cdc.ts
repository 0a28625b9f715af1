import { ConnectClient, loadConnectorSpec, pgVarsFromUrl } from '../../processors/core/connect/client.js';
import type { CoreSettings } from '../../processors/core/config/core-settings.js';
import { sleep } from '../../processors/core/errors/retry.js';
import { ROOT } from './processes.js';

/**
 * Applies the shipped Debezium connector (as `sluice connectors apply` does) and waits until
 * it and its tasks are RUNNING. test/support/cdc.ts does the same for the tests, but finds
 * the connector file relative to its source, which the compiled bench is not beside.
 */
export async function ensureCdcConnector(settings: CoreSettings, timeoutMs = 60_000): Promise<void> {
  const connect = new ConnectClient(settings.connect.url);
  const spec = loadConnectorSpec(`${ROOT}connectors/debezium/staging-agent-events.json`, pgVarsFromUrl(settings.database.url));
  await connect.apply(spec);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await connect.status(spec.name).catch(() => undefined);
    if (s?.connector.state === 'RUNNING' && s.tasks.length > 0 && s.tasks.every((t) => t.state === 'RUNNING')) return;
    if (Date.now() > deadline) throw new Error(`Debezium connector ${spec.name} is not RUNNING after ${timeoutMs / 1000} s (${JSON.stringify(s)}); is Kafka Connect up? npm run stack:up`);
    await sleep(250);
  }
}
