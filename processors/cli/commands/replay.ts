import { requireKafkaInput } from '../../core/pipeline/input-config.js';
import { Command, InvalidArgumentError, Option } from 'commander';
import { createKafka } from '../../core/kafka/client.js';
import { loadPipeline } from '../../core/pipeline/lint.js';
import { pipelineS3Client } from '../../export/export.js';
import { alignToFiles, executeReplay, planReplay, ReplayRefusedError, writeShadowPipeline, type ReplayTarget } from '../../ops/replay.js';
import { cliSettings } from '../context.js';

interface ReplayOptions {
  group: string;
  topic: string;
  toEarliest?: boolean;
  toDatetime?: Date;
  toOffset?: bigint;
  shiftBy?: bigint;
  partitions?: number[];
  dryRun?: boolean;
  execute?: boolean;
  pipeline?: string;
  toSinkPrefix?: string;
}

const bigint = (v: string): bigint => {
  if (!/^-?\d+$/.test(v)) throw new InvalidArgumentError('expected an integer');
  return BigInt(v);
};

/** `sluice replay`: move a consumer group's offsets, showing the plan first. */
export function replayCommand(): Command {
  return new Command('replay')
    .description("replay by offset reset: shows each partition's committed and target offset, then (with --execute) moves the group there; refused while the group has members")
    .requiredOption('--group <group>', 'the consumer group (e.g. sluice-export-lake)')
    .requiredOption('--topic <topic>', 'the topic whose offsets move')
    .addOption(new Option('--to-earliest', 'the start of the retained log').conflicts(['toDatetime', 'toOffset', 'shiftBy']))
    .addOption(
      new Option('--to-datetime <iso>', 'the first record at or after this time').argParser((v) => {
        const d = new Date(v);
        if (Number.isNaN(d.getTime())) throw new InvalidArgumentError('expected an ISO 8601 time, e.g. 2026-10-01T00:00:00Z');
        return d;
      }),
    )
    .addOption(new Option('--to-offset <n>', 'this offset in every chosen partition').argParser(bigint))
    .addOption(new Option('--shift-by <n>', 'the committed offset plus n (negative: back)').argParser(bigint))
    .option('--partitions <list>', 'only these partitions, comma-separated', (v) => v.split(',').map((x) => Number(x.trim())))
    .addOption(new Option('--dry-run', 'show the plan, change nothing (the default)').conflicts('execute'))
    .option('--execute', 'apply the plan')
    .option('--pipeline <file>', "the export pipeline that consumes with this group: its files are lined up with the targets and the objects the replay rewrites are deleted first, so the re-export leaves exactly one copy")
    .option('--to-sink-prefix <prefix>', 'with --pipeline: leave the live group and lake alone; write <pipeline>.shadow.yaml with its own group, keys under this prefix and its own DLQ, and point that group at the targets')
    .action(async (o: ReplayOptions, cmd: Command) => {
      const targets = [o.toEarliest, o.toDatetime, o.toOffset, o.shiftBy].filter((x) => x !== undefined);
      if (targets.length !== 1) cmd.error('sluice replay: name exactly one target: --to-earliest, --to-datetime ISO, --to-offset N or --shift-by N', { exitCode: 64 });
      if (o.toSinkPrefix !== undefined && !o.pipeline) cmd.error('sluice replay: --to-sink-prefix needs --pipeline FILE (the pipeline to shadow)', { exitCode: 64 });
      const target: ReplayTarget = o.toEarliest
        ? { kind: 'earliest' }
        : o.toDatetime
          ? { kind: 'datetime', at: o.toDatetime }
          : o.toOffset !== undefined
            ? { kind: 'offset', offset: o.toOffset }
            : { kind: 'shift', by: o.shiftBy! };
      const s = cliSettings(cmd);
      const kafka = createKafka(s.kafka, { region: s.s3.region, clientId: `${s.kafka.clientId}-replay` });
      const admin = kafka.admin();
      await admin.connect();
      try {
        const pipeline = o.pipeline ? loadPipeline(o.pipeline) : undefined;
        let group = o.group;
        let shadowFile: string | undefined;
        if (pipeline && o.toSinkPrefix !== undefined) {
          const prefix = o.toSinkPrefix.endsWith('/') ? o.toSinkPrefix : `${o.toSinkPrefix}/`;
          group = `${o.group}.shadow.${prefix.replace(/[^A-Za-z0-9._-]/g, '_').replace(/_+$/, '')}`;
          shadowFile = o.pipeline!.replace(/\.ya?ml$/, '') + '.shadow.yaml';
          if (o.execute) writeShadowPipeline(o.pipeline!, shadowFile, { group, prefix, dlqTopic: `${pipeline.dlq.topic}.shadow` });
        } else if (pipeline && requireKafkaInput(pipeline, 'sluice replay').consumer_group !== o.group) {
          throw new ReplayRefusedError(`${o.pipeline} consumes with group ${requireKafkaInput(pipeline, 'sluice replay').consumer_group}, not ${o.group}`);
        }
        const plan = await planReplay(admin, group, o.topic, target, o.partitions);
        const superseded = pipeline && !shadowFile ? await alignToFiles(pipelineS3Client(pipeline), pipeline, plan) : [];
        console.log(`replay of ${o.topic} for group ${group} (state ${plan.state}, ${plan.members} member${plan.members === 1 ? '' : 's'}):`);
        console.log('  PARTITION   COMMITTED      TARGET    RECORDS TO READ AGAIN');
        for (const p of plan.partitions) {
          const from = p.committed ?? p.low;
          const moved = p.target !== p.requested ? `  (asked ${p.requested}; moved back to the start of a file that spans it)` : '';
          console.log(`  ${String(p.partition).padStart(9)}  ${(p.committed ?? '-').toString().padStart(10)}  ${p.target.toString().padStart(10)}  ${(from - p.target).toString().padStart(22)}${moved}`);
        }
        if (superseded.length > 0) console.log(`  ${superseded.length} objects of ${o.pipeline} hold records at or after the targets: deleted before the reset, written again by the replay`);
        if (!o.execute) {
          console.log('\ndry run: nothing changed. Run again with --execute to apply.');
          return;
        }
        if (plan.members > 0) {
          throw new ReplayRefusedError(`consumer group ${group} has ${plan.members} active member${plan.members === 1 ? '' : 's'}: stop the pipeline's runners first (SIGTERM flushes and commits), then run the replay again`);
        }
        const output = pipeline?.output.config;
        await executeReplay(admin, plan, pipeline ? pipelineS3Client(pipeline) : undefined, output?.bucket, superseded);
        console.log(`\ndone: group ${group} now starts at the targets.`);
        if (shadowFile) console.log(`shadow pipeline written to ${shadowFile}; run it with: npx sluice run ${shadowFile}`);
        else console.log(`start the pipeline again (npx sluice run${o.pipeline ? ` ${o.pipeline}` : ' ...'}) to re-export.`);
      } finally {
        await admin.disconnect();
      }
    });
}
