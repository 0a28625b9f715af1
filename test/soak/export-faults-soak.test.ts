import type { Admin, Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectExportStack, stack } from '../support/export-harness.js';
import { killsWhileDraining, rebalanceWhileDraining, s3OutageWhileDraining, type FaultOptions } from '../support/export-faults.js';
import { testSettings } from '../support/servers.js';

/**
 * Issue 4's fault acceptance at soak size (`npm run test:soak`, SOAK_EVENTS, default
 * 1,000,000 events a scenario), one fault a scenario, with the shipped batch size: the
 * same scenarios as test/integration/export-faults.test.ts. Each ends with the lake read
 * back by DuckDB: every event_id once, values, types, partitions, exact sums beyond 2^53.
 * (export-soak.test.ts runs the combined chaos at the same size.)
 */

const settings = testSettings();
const events = Number(process.env.SOAK_EVENTS ?? 1_000_000);
let kafka: Kafka;
let admin: Admin;
const log = (line: string) => console.log(`[soak] ${line}`);

beforeAll(async () => {
  ({ kafka, admin } = await connectExportStack(settings));
});

afterAll(async () => {
  stack('up', 's3');
  await admin?.disconnect();
});

const options = (): FaultOptions => ({ kafka, admin, settings, events, logPrefix: 'export-soak-faults', count: 50_000, log });

describe(`export faults soak: ${events.toLocaleString('en-US')} events a scenario`, () => {
  it('three SIGKILLs at random moments while the backlog drains: exactly once', async () => {
    const result = await killsWhileDraining(options());
    log(`kills: ${JSON.stringify(result.kills, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}; ${result.seconds} s`);
    expect(result.kills).toHaveLength(3);
    for (const k of result.kills) expect(k.behind).toBeGreaterThan(0n);
  }, 3_600_000);

  it('S3 stopped for 30 s mid-run: the same runner resumes alone, no offset committed while down, no loss, no duplicate', async () => {
    const result = await s3OutageWhileDraining(options(), 30_000);
    log(`S3 outage: ${result.behindDuringOutage} uncommitted during the outage; ${result.seconds} s`);
    expect(result.behindDuringOutage).toBeGreaterThan(0n);
    expect(result.committedDuringOutage).toBe(0n);
  }, 3_600_000);

  it('a second runner joins mid-run and leaves with SIGTERM, three times: exactly once', async () => {
    const result = await rebalanceWhileDraining(options(), 3);
    log(`rebalance: ${JSON.stringify(result.visits)}; ${result.seconds} s`);
    expect(result.visits).toHaveLength(3);
    for (const v of result.visits) expect(v.exit).toBe(0);
    for (const v of result.visits) expect(v.consumed).toBeGreaterThan(0);
  }, 3_600_000);
});
