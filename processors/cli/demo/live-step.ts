import { startLive } from '../../live/live.js';
import type { LiveTotals } from '../../live/output.js';
import type { DemoContext } from './context.js';

const DEMO_LIVE_KEY = 'sluice-demo-live-key';
const EVENTS_TOPIC = 'sluice.agent-events';
const LIVE_GROUP = 'sluice-live';

/** Months from `month` to the current UTC month, both counted: the window that keeps `month` open. */
function monthsSince(month: string, now = new Date()): number {
  const [y, m] = month.split('-').map(Number) as [number, number];
  return (now.getUTCFullYear() - y) * 12 + now.getUTCMonth() - (m - 1) + 1;
}

/**
 * Live commissions: `sluice live` runs in-process over the events topic until its group has
 * consumed it all, then one agent's month-to-date commission from GET /live/agents/... is
 * shown next to that agent's row of the report just generated; they must be equal.
 */
export async function liveStep(ctx: DemoContext, month: string, reportCsv: string): Promise<void> {
  const key = process.env.SLUICE_LIVE_API_KEY ?? DEMO_LIVE_KEY;
  const openMonths = Math.max(3, monthsSince(month));
  const live = await startLive({ env: { ...ctx.processorEnv, SLUICE_LIVE_API_KEY: key, SLUICE_LIVE_HTTP_PORT: '0', SLUICE_LIVE_GROUP_ID: LIVE_GROUP, SLUICE_LIVE_OPEN_MONTHS: String(openMonths) } });
  try {
    const admin = ctx.kafka.admin();
    await admin.connect();
    try {
      const deadline = Date.now() + 120_000;
      for (;;) {
        const ends = await admin.fetchTopicOffsets(EVENTS_TOPIC);
        const committed = new Map(((await admin.fetchOffsets({ groupId: LIVE_GROUP, topics: [EVENTS_TOPIC] }))[0]?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]));
        const behind = ends.filter((e) => BigInt(e.high) > BigInt(e.low) && (committed.get(e.partition) ?? -1n) < BigInt(e.high));
        if (behind.length === 0) break;
        if (Date.now() > deadline) throw new Error(`sluice live did not consume ${EVENTS_TOPIC} to its end within 120 s (${behind.length} partitions behind)`);
        await new Promise((r) => setTimeout(r, 250));
      }
    } finally {
      await admin.disconnect();
    }
    ctx.ok(`sluice live consumed ${EVENTS_TOPIC} (group ${LIVE_GROUP}); totals on agent-commissions.live, API on ${live.url}`);
    const [header, row] = reportCsv.trimEnd().split('\n');
    if (!header || !row) throw new Error('the report has no row to compare with');
    const cells = row.split(',');
    const agentId = cells[0]!.replace(/^"|"$/g, '');
    const reportCommission = cells[header.split(',').indexOf('commission_minor')]!;
    const url = `${live.url}/live/agents/${encodeURIComponent(agentId)}/months/${month}`;
    let totals: LiveTotals | undefined;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const res = await fetch(url, { headers: { 'x-api-key': key } });
      if (res.ok) {
        totals = (await res.json()) as LiveTotals;
        if (totals.commission_minor === reportCommission) break;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    if (!totals) throw new Error(`GET ${url} found no live totals for ${agentId}`);
    ctx.ok(`report row : ${row}`);
    ctx.ok(`live       : ${[totals.agent_id, totals.month, totals.events, totals.customers_onboarded, totals.deposits_minor, totals.withdrawals_minor, totals.investments_minor, totals.net_inflow_minor, totals.commission_minor, totals.currency].join(',')}`);
    if (totals.commission_minor !== reportCommission) throw new Error(`live commission ${totals.commission_minor} of ${agentId} differs from the report's ${reportCommission}: run sluice reconcile --month ${month}`);
    ctx.ok(`equal: ${agentId}'s month-to-date commission is ${totals.commission_minor} live and in the report (sluice reconcile --month ${month} checks every agent)`);
  } finally {
    await live.stop();
  }
}
