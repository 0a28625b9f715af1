import { Command, InvalidArgumentError } from 'commander';
import { Presets, SingleBar } from 'cli-progress';
import { createKafka } from '../../core/kafka/client.js';
import { inspectDlq, redriveDlq, redriveGroup, type DlqFilter } from '../../ops/dlq.js';
import { cliLogger, cliSettings } from '../context.js';

interface FilterOptions {
  reason?: string;
  sourceTopic?: string;
  since?: number;
  until?: number;
}

const time = (value: string): number => {
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new InvalidArgumentError('expected an ISO 8601 time, e.g. 2026-11-22T10:00:00Z');
  return ms;
};

function withFilters(cmd: Command): Command {
  return cmd
    .option('--reason <code>', 'only dead letters with this sluice.dlq.reason (e.g. mapping_error)')
    .option('--source-topic <topic>', 'only dead letters that came from this topic')
    .option('--since <time>', 'only dead letters that failed at or after this ISO 8601 time', time)
    .option('--until <time>', 'only dead letters that failed at or before this ISO 8601 time', time);
}

function filterOf(o: FilterOptions): DlqFilter {
  return { reason: o.reason, sourceTopic: o.sourceTopic, since: o.since, until: o.until };
}

/** `sluice dlq inspect|redrive`: what is in a dead-letter topic, and sending fixed records back. */
export function dlqCommand(): Command {
  const dlq = new Command('dlq').description('inspect a dead-letter topic and redrive its records');

  dlq.addCommand(
    withFilters(new Command('inspect'))
      .description('counts of dead letters by reason, and samples with their headers (reads the topic to its current end; commits nothing)')
      .argument('<topic>', 'the dead-letter topic, e.g. sluice.agent-events.export.dlq')
      .option('-n, --samples <n>', 'sample records to show', (v) => Number(v), 5)
      .option('--json', 'print the result as JSON')
      .action(async (topic: string, opts: FilterOptions & { samples: number; json?: boolean }, cmd: Command) => {
        const s = cliSettings(cmd);
        const kafka = createKafka(s.kafka, { region: s.s3.region, clientId: `${s.kafka.clientId}-dlq`, logger: cliLogger(s, 'dlq') });
        const admin = kafka.admin();
        await admin.connect();
        try {
          const r = await inspectDlq(kafka, admin, topic, filterOf(opts), opts.samples);
          if (opts.json) {
            console.log(JSON.stringify({ topic, total: r.total, matched: r.matched, by_reason: Object.fromEntries(r.byReason), samples: r.samples }, null, 2));
            return;
          }
          console.log(`${topic}: ${r.total} dead letters, ${r.matched} match the filters`);
          for (const [reason, n] of [...r.byReason].sort((a, b) => b[1] - a[1])) console.log(`  ${String(n).padStart(8)}  ${reason}`);
          for (const d of r.samples) {
            console.log(`\n- ${topic}[${d.partition}]@${d.offset}  key=${d.key ?? 'null'}  ${d.valueBytes} bytes`);
            if (d.info) console.log(`  from ${d.info.topic}[${d.info.partition}]@${d.info.offset} by ${d.info.processor} at ${new Date(Number(d.info.failedAt)).toISOString()}\n  ${d.info.reason}: ${d.info.error}`);
            for (const [k, v] of Object.entries(d.headers)) if (!k.startsWith('sluice.dlq.')) console.log(`  header ${k}: ${v}`);
            console.log(`  value: ${d.valuePreview}`);
          }
        } finally {
          await admin.disconnect();
        }
      }),
  );

  dlq.addCommand(
    withFilters(new Command('redrive'))
      .description('republish dead letters (original key, value and headers) to a topic, in transactions that also commit the redrive\'s own position: interrupted and rerun, nothing is sent twice')
      .argument('<topic>', 'the dead-letter topic')
      .requiredOption('--to <topic>', 'where the records go (usually the topic they came from, once the cause is fixed)')
      .option('--dry-run', 'count what would be sent; send and commit nothing')
      .addHelpText('after', '\nThe position is kept in the consumer group sluice-redrive.<dlq>.<to>.<filters>: a second run sends only dead letters that arrived since.')
      .action(async (topic: string, opts: FilterOptions & { to: string; dryRun?: boolean }, cmd: Command) => {
        const s = cliSettings(cmd);
        const kafka = createKafka(s.kafka, { region: s.s3.region, clientId: `${s.kafka.clientId}-dlq`, logger: cliLogger(s, 'dlq') });
        const admin = kafka.admin();
        await admin.connect();
        const bar = new SingleBar({ format: '  redrive [{bar}] {value}/{total} read | {sent} sent', hideCursor: true }, Presets.shades_classic);
        let started = false;
        try {
          const options = { from: topic, to: opts.to, filter: filterOf(opts), dryRun: opts.dryRun ?? false };
          console.log(`${opts.dryRun ? 'dry run: ' : ''}${topic} -> ${opts.to} (position: consumer group ${redriveGroup(options)})`);
          const r = await redriveDlq(kafka, admin, {
            ...options,
            onProgress: (done, total, sent) => {
              if (!started) bar.start(total, 0, { sent: 0 });
              started = true;
              bar.update(done, { sent });
            },
          });
          if (started) bar.stop();
          console.log(`${opts.dryRun ? 'would send' : 'sent'} ${r.sent} of ${r.read} dead letters read (${r.skipped} did not match the filters)${r.read === 0 ? ': nothing new since the last redrive' : ''}`);
        } finally {
          await admin.disconnect();
        }
      }),
  );
  return dlq;
}
