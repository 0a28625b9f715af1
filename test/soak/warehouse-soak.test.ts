import type { Admin, Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectExportStack, stack } from '../support/export-harness.js';
import { testSettings } from '../support/servers.js';
import { runWarehouseChaos } from '../support/warehouse-chaos.js';

/**
 * Issue 13's warehouse acceptance at soak size (`npm run test:soak`, SOAK_EVENTS, default
 * 1,000,000 events): both warehouse pipelines with the shipped batch size through three
 * SIGKILLs, a PostgreSQL restart, a rebalance in and out and refused rows; then every valid
 * event exactly once with its values, and agent_daily equal to its GROUP BY.
 */

const settings = testSettings();
const events = Number(process.env.SOAK_EVENTS ?? 1_000_000);
let kafka: Kafka;
let admin: Admin;

beforeAll(async () => {
  ({ kafka, admin } = await connectExportStack(settings));
});

afterAll(async () => {
  stack('up', 'postgres');
  await admin?.disconnect();
});

describe(`warehouse soak: ${events.toLocaleString('en-US')} events`, () => {
  it('exactly once into agent_events and agent_daily through SIGKILLs, a PostgreSQL restart, a rebalance and poison records', async () => {
    const result = await runWarehouseChaos({ kafka, admin, settings, events, perSecond: Math.max(2000, Math.round(events / 240)), logPrefix: 'warehouse-soak', log: (l) => console.log(`[soak] ${l}`) });
    console.log(`[soak] ${JSON.stringify(result)}`);
    expect(result).toMatchObject({ kills: 3, rebalances: 2, postgresRestarts: 1, refused: 5 });
  }, 3_600_000);
});
