import { requireKafkaInput } from '../../core/pipeline/input-config.js';
import { SingleBar, Presets } from 'cli-progress';
import { withRetry } from '../../core/errors/retry.js';
import { readParquetTable } from '../../core/parquet/reader.js';
import { createS3Client } from '../../core/s3/client.js';
import { download, listKeys } from '../../core/s3/objects.js';
import { startExport } from '../../export/export.js';
import { exportPipelineFiles } from '../commands/lint.js';
import type { DemoContext } from './context.js';

const LAKE_PREFIX = 'lake/agent_events/';

/**
 * The lake: the shipped export pipeline (connectors/exports/lake.yaml) runs in-process until
 * its consumer group has committed the whole events topic; then the Parquet objects are
 * listed and read back, and every demo event must be there exactly once.
 */
export async function lakeStep(ctx: DemoContext, wanted: Set<string>): Promise<void> {
  const s = ctx.settings;
  const log = ctx.ok;
  const env = { ...ctx.processorEnv, SLUICE_EXPORT_HTTP_PORT: '0' };
  const files = exportPipelineFiles().filter((f) => f.endsWith('lake.yaml'));
  const running = await startExport({ files, env });
  const runner = running.runners[0]!;
  const input = requireKafkaInput(runner.pipeline, 'the demo');
  const group = input.consumer_group;
  const topics = input.topics ?? [];
  try {
    const bar = new SingleBar({ format: '      exporting [{bar}] {value}/{total} records committed by group {group}', hideCursor: true }, Presets.shades_classic);
    const admin = ctx.kafka.admin();
    await withRetry(() => admin.connect());
    try {
      const deadline = Date.now() + 120_000;
      let started = false;
      for (;;) {
        let end = 0;
        let done = 0;
        for (const topic of topics) {
          const ends = await admin.fetchTopicOffsets(topic);
          const committed = (await admin.fetchOffsets({ groupId: group, topics: [topic] }))[0]?.partitions ?? [];
          for (const p of ends) {
            const c = Number(committed.find((x) => x.partition === p.partition)?.offset ?? -1);
            end += Number(p.high);
            done += Math.max(0, Math.min(Number(p.high), c));
          }
        }
        if (!started) bar.start(end, done, { group });
        started = true;
        bar.setTotal(end);
        bar.update(done, { group });
        if (done >= end) break;
        if (Date.now() > deadline) throw new Error(`the lake pipeline committed ${done} of ${end} records within 120 s: see the export's lines in ${ctx.logFile}`);
        await new Promise((r) => setTimeout(r, 250));
      }
      bar.stop();
    } finally {
      await admin.disconnect();
    }
  } finally {
    await running.stop();
  }

  const s3 = createS3Client(s.s3);
  const bucket = runner.pipeline.output.config.bucket;
  const keys = (await listKeys(s3, bucket, LAKE_PREFIX)).filter((k) => k.endsWith('.parquet'));
  const seen = new Map<string, number>();
  let sample: Record<string, unknown> | undefined;
  for (const key of keys) {
    const table = readParquetTable(await download(s3, bucket, key));
    const ids = table.getChild('event_id')!;
    for (let i = 0; i < table.numRows; i++) {
      const id = String(ids.get(i));
      if (!wanted.has(id)) continue;
      seen.set(id, (seen.get(id) ?? 0) + 1);
      sample ??= { key, ...table.get(i)!.toJSON() };
    }
  }
  const missing = [...wanted].filter((id) => !seen.has(id));
  const repeated = [...seen].filter(([, n]) => n > 1);
  if (missing.length > 0 || repeated.length > 0) {
    throw new Error(`the lake holds ${seen.size} of ${wanted.size} demo events (${missing.length} missing, ${repeated.length} more than once)`);
  }
  log(`s3://${bucket}/${LAKE_PREFIX}: ${keys.length} Parquet objects; every one of the ${wanted.size} demo events is there exactly once`);
  log(`one row: ${JSON.stringify(sample, (k, v) => (typeof v === 'bigint' ? v.toString() : k.endsWith('_at') && typeof v === 'number' ? new Date(v).toISOString() : v))}`);
}
