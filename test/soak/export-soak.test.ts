import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Admin, Kafka } from 'kafkajs';
import { runExportChaos } from '../support/export-chaos.js';
import { connectExportStack, stack } from '../support/export-harness.js';
import { testSettings } from '../support/servers.js';

/**
 * The soak of issue 4 (`npm run test:soak`): SOAK_EVENTS (1,000,000) DOMAIN events through
 * the real runner while it is SIGKILLed three times, a second runner joins and leaves and
 * S3 is down for 30 s; the lake read back by DuckDB holds each event_id exactly once with
 * its values, types and exact sums beyond 2^53.
 */

const settings = testSettings();
const events = Number(process.env.SOAK_EVENTS ?? 1_000_000);
const perSecond = Number(process.env.SOAK_EVENTS_PER_SECOND ?? 10_000);
let kafka: Kafka;
let admin: Admin;

beforeAll(async () => {
  ({ kafka, admin } = await connectExportStack(settings));
});

afterAll(async () => {
  stack('up', 's3');
  await admin?.disconnect();
});

describe(`export soak: ${events.toLocaleString('en-US')} events`, () => {
  it('stays exactly once through three SIGKILLs, a rebalance in and out, and 30 s without S3', async () => {
    const result = await runExportChaos({ kafka, admin, settings, events, perSecond, s3OutageMs: 30_000, logPrefix: 'export-soak', log: (line) => console.log(`[soak] ${line}`) });
    console.log(`[soak] ${events} events verified exactly once in ${result.seconds} s`);
    expect(result.kills).toBe(3);
    expect(result.rebalances).toBeGreaterThanOrEqual(2);
    expect(result.failuresDuringOutage).toBeGreaterThan(0);
  }, 3_600_000);
});
