import type { Admin, Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectExportStack, stack } from '../support/export-harness.js';
import { killsWhileDraining, rebalanceWhileDraining, s3OutageWhileDraining, type FaultOptions } from '../support/export-faults.js';
import { testSettings } from '../support/servers.js';

/**
 * Issue 4's fault acceptance, CI-sized, one fault a test (the soak runs the same scenarios
 * with 1,000,000 events: test/soak/export-faults-soak.test.ts). Each ends with the lake
 * read back by DuckDB: every event_id once, values, types, partitions, exact sums.
 */

const settings = testSettings();
let kafka: Kafka;
let admin: Admin;
const log = (line: string) => console.log(line);

beforeAll(async () => {
  ({ kafka, admin } = await connectExportStack(settings));
});

afterAll(async () => {
  // Whatever happened, the stack's S3 runs again for the next test file.
  stack('up', 's3');
  await admin?.disconnect();
});

const options = (events: number): FaultOptions => ({ kafka, admin, settings, events, logPrefix: 'export-faults', count: 5000, log });

describe('export faults (CI-sized)', () => {
  it('three SIGKILLs at random moments while a backlog drains: exactly once', async () => {
    const result = await killsWhileDraining(options(150_000));
    expect(result.kills).toHaveLength(3);
    for (const k of result.kills) expect(k.behind).toBeGreaterThan(0n);
  }, 300_000);

  it('S3 stopped for 30 s mid-run: the same runner resumes alone, no offset committed while down, no loss, no duplicate', async () => {
    const result = await s3OutageWhileDraining(options(40_000), 30_000);
    expect(result.behindDuringOutage, 'records waiting while S3 was down (else the outage hit nothing)').toBeGreaterThan(0n);
    expect(result.committedDuringOutage, 'offsets committed while S3 was down').toBe(0n);
  }, 300_000);

  it('a second runner joins the group mid-run, takes partitions and leaves with SIGTERM, three times: exactly once', async () => {
    const result = await rebalanceWhileDraining({ ...options(60_000), count: 20_000 }, 3);
    expect(result.visits).toHaveLength(3);
    for (const v of result.visits) expect(v).toMatchObject({ consumed: expect.any(Number), exit: 0 });
    for (const v of result.visits) expect(v.consumed).toBeGreaterThan(0);
  }, 300_000);

  it('the same with S3 answering slowly (80 ms a request chunk, a distant or throttled bucket), so rebalances land inside flushes: exactly once', async () => {
    const result = await rebalanceWhileDraining({ ...options(60_000), count: 20_000, s3LatencyMs: 80 }, 3);
    expect(result.visits).toHaveLength(3);
    for (const v of result.visits) expect(v.exit).toBe(0);
    for (const v of result.visits) expect(v.consumed).toBeGreaterThan(0);
  }, 420_000);
});
