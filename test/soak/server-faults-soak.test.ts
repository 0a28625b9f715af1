import type { Admin, Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectExportStack, runId, stack } from '../support/export-harness.js';
import { ServerFaultSuite, type FaultOutcome, type ServerFault } from '../support/server-faults.js';
import { testSettings } from '../support/servers.js';

/**
 * The servers' faults at soak size: 300 rows/s into staging.agent_events, 30 s of flow
 * before each fault and after it, the registry down 60 s; each server faulted alone and
 * then combined with an export runner SIGKILLed and restarted while it is away. After each,
 * every row so far exactly once on the events topic and in the lake with its values, and
 * the commission report equal to DuckDB over the lake (test/support/server-faults.ts).
 */
const settings = testSettings();
let kafka: Kafka;
let admin: Admin;
let suite: ServerFaultSuite | undefined;
const outcomes: FaultOutcome[] = [];
const FAULTS: [ServerFault, string][] = [
  ['broker-kill', 'broker SIGKILLed and restarted'],
  ['connect-kill', 'Kafka Connect SIGKILLed and restarted'],
  ['postgres-restart', 'PostgreSQL restarted'],
  ['registry-stop', 'registry stopped 60 s'],
];

beforeAll(async () => {
  ({ kafka, admin } = await connectExportStack(settings));
  suite = await ServerFaultSuite.start({ settings, kafka, admin, rate: 300, flowSeconds: 30, log: (l) => console.log(l) }, runId());
}, 600_000);

afterAll(async () => {
  await suite?.abort();
  for (const c of ['postgres', 'kafka', 'registry', 'connect']) stack('up', c);
  await admin?.disconnect();
  console.log(`server faults soak:\n${outcomes.map((o) => `  ${o.fault}: ${o.valid} valid rows so far, CDC duplicates ${o.cdcDuplicates}, events ${JSON.stringify(o.eventsTopic)}, lake ${JSON.stringify(o.lake)}, ${o.seconds.toFixed(0)} s`).join('\n')}`);
}, 600_000);

describe('server faults at soak size: exactly once on the events topic and in the lake, report = DuckDB', () => {
  for (const restartRunner of [false, true]) {
    for (const [fault, what] of FAULTS) {
      it(`${what}${restartRunner ? ', export runner SIGKILLed and restarted meanwhile' : ''}`, async () => {
        const o = await suite!.fault(fault, { restartRunner, registryDownMs: 60_000 });
        outcomes.push(o);
        expect({ events: o.eventsTopic, lake: o.lake }).toEqual({
          events: { records: o.valid, distinct: o.valid, duplicates: 0, missing: 0, invalid: 0 },
          lake: { rows: o.valid, distinct: o.valid, duplicates: 0, missing: 0 },
        });
      }, 1_200_000);
    }
  }
});
