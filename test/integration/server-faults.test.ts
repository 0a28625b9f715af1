import type { Admin, Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectExportStack, runId, stack } from '../support/export-harness.js';
import { ServerFaultSuite, type FaultOutcome } from '../support/server-faults.js';
import { testSettings } from '../support/servers.js';

/**
 * The servers' faults, sized for CI (a few minutes): rows flow into staging.agent_events
 * at 100 rows/s through Debezium, the normalizer and the export into the lake while each
 * server is faulted in turn, each combined with the export runner SIGKILLed and restarted
 * while the server is away; after each, every row so far is on the events topic
 * (read_committed) and in the lake exactly once with its values, and the commission report
 * equals DuckDB over the lake. The registry stays down 10 s here (60 s in the soak,
 * test/soak/server-faults-soak.test.ts, which also runs each fault without the restart).
 */
const settings = testSettings();
let kafka: Kafka;
let admin: Admin;
let suite: ServerFaultSuite | undefined;
const outcomes: FaultOutcome[] = [];

beforeAll(async () => {
  ({ kafka, admin } = await connectExportStack(settings));
  suite = await ServerFaultSuite.start({ settings, kafka, admin, rate: 100, flowSeconds: 4, log: (l) => console.log(l) }, runId());
}, 240_000);

afterAll(async () => {
  await suite?.abort();
  // Whatever happened, the stack is left whole for the next test file.
  for (const c of ['postgres', 'kafka', 'registry', 'connect']) stack('up', c);
  await admin?.disconnect();
  if (outcomes.length > 0) console.log(`server faults: ${outcomes.map((o) => `${o.fault}: ${o.valid} valid rows, CDC duplicates ${o.cdcDuplicates}, ${o.seconds.toFixed(0)} s`).join('; ')}`);
}, 240_000);

describe('server faults during a steady flow: exactly once on the events topic and in the lake, report = DuckDB', () => {
  const expectExact = (o: FaultOutcome) => {
    outcomes.push(o);
    expect({ events: o.eventsTopic, lake: o.lake }).toEqual({
      events: { records: o.valid, distinct: o.valid, duplicates: 0, missing: 0, invalid: 0 },
      lake: { rows: o.valid, distinct: o.valid, duplicates: 0, missing: 0 },
    });
  };

  it('broker SIGKILLed and restarted, export runner SIGKILLed and restarted meanwhile', async () => {
    expectExact(await suite!.fault('broker-kill', { restartRunner: true }));
  }, 300_000);

  it('Kafka Connect SIGKILLed and restarted, export runner SIGKILLed and restarted meanwhile', async () => {
    expectExact(await suite!.fault('connect-kill', { restartRunner: true }));
  }, 300_000);

  it('PostgreSQL restarted, export runner SIGKILLed and restarted meanwhile', async () => {
    expectExact(await suite!.fault('postgres-restart', { restartRunner: true }));
  }, 300_000);

  it('registry stopped 10 s (CI size; 60 s in the soak), export runner SIGKILLed and restarted meanwhile', async () => {
    expectExact(await suite!.fault('registry-stop', { restartRunner: true, registryDownMs: 10_000 }));
  }, 300_000);
});
