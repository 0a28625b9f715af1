import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LiveFaultRun } from '../support/live-faults.js';
import { testSettings } from '../support/servers.js';

/**
 * Issue 14's 1M-event version of the live fault run (test/integration/live-postgres.test.ts,
 * the same run from test/support/live-faults.ts): the report tests' generated month with
 * 1,000,000 bulk events (plus its duplicates, late events, month-boundary and special
 * agents) inserted into staging.agent_events in transactions of 5,000 rows, through the
 * shipped Debezium connector and `sluice normalizer` into two `sluice live` instances, one
 * SIGKILLed three times while the rows stream and one joining mid-stream (a rebalance);
 * re-inserts after a prune and an UPDATE among them. Then the real export writes the lake
 * and `sluice reconcile --month` must find no difference in any month.
 */
const BULK = Number(process.env.SLUICE_LIVE_SOAK_EVENTS ?? 1_000_000);
const started = Date.now();
const log = (line: string) => console.log(`[live-soak +${((Date.now() - started) / 1000).toFixed(0)} s] ${line}`);
const faults = new LiveFaultRun(testSettings(), { run: randomUUID().slice(0, 8), label: 'livesoak', bulk: BULK, rowsPerInsert: 5000, waitScale: 15, log });

beforeAll(async () => {
  await faults.setUp();
});

afterAll(async () => {
  await faults.tearDown();
});

describe(`sluice live from Postgres, ${BULK.toLocaleString('en-US')} events`, () => {
  it('counts every event exactly once through three SIGKILLs and a rebalance: reconcile finds no difference in any month', async () => {
    expect(faults.events.length).toBeGreaterThanOrEqual(BULK);
    expect(faults.months.length).toBeGreaterThanOrEqual(3);
    await faults.streamWithFaults();
    expect(await faults.problems()).toEqual([]);
    log('done');
  }, 3_600_000);
});
