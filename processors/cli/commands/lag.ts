import { Command } from 'commander';
import { createKafka } from '../../core/kafka/client.js';
import { consumerLag } from '../../ops/lag.js';
import { cliLogger, cliSettings } from '../context.js';

/** `sluice lag`: lag per partition, in records and in seconds, as the broker sees it. */
export function lagCommand(): Command {
  return new Command('lag')
    .description('consumer lag per partition: log end offset minus the committed offset, and the age of the oldest uncommitted record')
    .option('-g, --group <group...>', 'consumer groups (default: every group)')
    .option('--no-seconds', 'skip reading the oldest uncommitted record of each lagging partition')
    .option('--json', 'one JSON object per partition')
    .addHelpText(
      'after',
      '\nThe export runner exports the same figure as sluice_export_consumer_lag; infra/prometheus/alerts.yaml alerts on it.\nA group is listed once it has committed an offset: a reader that commits nothing (a throwaway consumer) has no position to lag from, and the broker reports none for it. The demo deletes the groups it reads with.\nExit 0 in every case; lag is a reading, not an error.',
    )
    .action(async (opts: { group?: string[]; seconds: boolean; json?: boolean }, cmd: Command) => {
      const s = cliSettings(cmd);
      const kafka = createKafka(s.kafka, { region: s.s3.region, clientId: `${s.kafka.clientId}-lag`, logger: cliLogger(s, 'lag') });
      const admin = kafka.admin();
      await admin.connect();
      try {
        const rows = await consumerLag(kafka, admin, { ...(opts.group ? { groups: opts.group } : {}), seconds: opts.seconds });
        if (opts.json) {
          for (const r of rows) console.log(JSON.stringify({ ...r, lag: Number(r.lag) }));
          return;
        }
        if (rows.length === 0) {
          console.log('no committed offsets for the given groups');
          return;
        }
        const table = [['GROUP', 'TOPIC', 'PARTITION', 'COMMITTED', 'END', 'LAG', 'LAG SECONDS']].concat(
          rows.map((r) => [r.group, r.topic, String(r.partition), r.committed ?? '-', r.end, r.lag.toString(), r.lagSeconds === undefined ? (opts.seconds ? '?' : '-') : String(r.lagSeconds)]),
        );
        const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
        for (const row of table) console.log(row.map((c, i) => (i >= 2 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  '));
        const byGroup = new Map<string, bigint>();
        for (const r of rows) byGroup.set(r.group, (byGroup.get(r.group) ?? 0n) + r.lag);
        console.log(`\n${[...byGroup].map(([g, l]) => `${g}: ${l} records behind`).join('\n')}`);
      } finally {
        await admin.disconnect();
      }
    });
}
