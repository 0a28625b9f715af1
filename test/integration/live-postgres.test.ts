import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LiveFaultRun } from '../support/live-faults.js';
import { testSettings } from '../support/servers.js';

/**
 * `sluice live` from the Postgres commit (issue 14 step 5): the report tests' generated
 * month (duplicates, late events, month boundaries in several zones, sums past 2^53 and
 * 2^63, half-even ties, the tier edge) inserted into staging.agent_events, streamed by the
 * shipped Debezium connector, normalized by `sluice normalizer` (its durable dedupe off, so
 * every re-inserted copy reaches live) and counted by two `sluice live` instances, one of
 * which is SIGKILLed three times while the rows stream, the other joining mid-stream (a
 * rebalance moves partitions and their state). The generator's repeats are re-inserts
 * after a prune (the row deleted, then inserted again with the same event_id); one row is
 * UPDATEd (the normalizer dead-letters it; its counted values stand). Then the real export
 * writes the lake and `sluice reconcile --month` must find no difference, against the
 * batch report and against the staging table's own sums, for every month of the events.
 * The run is test/support/live-faults.ts, shared with the 1M-event soak (test/soak/live-soak.test.ts).
 */
const faults = new LiveFaultRun(testSettings(), { run: randomUUID().slice(0, 8), label: 'livepg', bulk: 600 });

beforeAll(async () => {
  await faults.setUp();
});

afterAll(async () => {
  await faults.tearDown();
});

describe('sluice live from Postgres', () => {
  it('counts the generated month from staging exactly once through three SIGKILLs and a rebalance: reconcile finds no difference in any month', async () => {
    expect(faults.months.length).toBeGreaterThanOrEqual(3); // the month and both neighbours (boundary events)
    await faults.streamWithFaults();
    expect(await faults.problems()).toEqual([]);
  }, 600_000);
});
