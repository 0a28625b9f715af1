import { mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../processors/core/errors/errors.js';
import { loadPipeline } from '../../processors/core/pipeline/lint.js';
import { eventTimeMillis, renderPathTemplate } from '../../processors/core/pipeline/path-template.js';
import { PipelineConfigError } from '../../processors/core/pipeline/problems.js';
import { formatByteSize, formatDuration, parseByteSize, parseDuration } from '../../processors/core/pipeline/units.js';
import { SERVERS_ENV } from '../support/servers.js';

const LAKE = 'connectors/exports/lake.yaml';

function jsonata(): ((expression: string) => { evaluate(input: unknown): Promise<unknown> }) | undefined {
  try {
    return createRequire(import.meta.url)('jsonata');
  } catch {
    return undefined;
  }
}

describe('loadPipeline: connectors/exports/lake.yaml', () => {
  const lake = loadPipeline(LAKE, { ...SERVERS_ENV }, { expressions: null });

  it('reads the events topic through the registry', () => {
    expect(lake.name).toBe('lake');
    expect(lake.input).toMatchObject({ type: 'kafka', config: { topics: ['sluice.agent-events'], consumer_group: 'sluice-export-lake', decode: 'avro_registry', start_from: 'earliest', brokers: ['localhost:9092'] } });
  });

  it('maps the envelope to rows and dedupes on the event id', () => {
    expect(lake.pipeline.processors.map((p) => [p.type, p.label])).toEqual([
      ['mapping', 'envelope_to_row'],
      ['dedupe', 'one_row_per_event'],
    ]);
    expect(lake.pipeline.processors[1]!.config).toEqual({ key: 'event_id', cache_size: 50000, window: undefined });
  });

  it('writes zstd Parquet partitioned by event type and UTC day, in 10 s / 50,000 / 64 MiB batches', () => {
    const s3 = lake.output.config;
    expect(s3).toMatchObject({ bucket: 'sluice-lake', format: 'parquet', compression: 'zstd', time_field: 'occurred_at', time_format: 'unix_us', endpoint: undefined, force_path_style: undefined });
    expect(s3.batching).toEqual({ count: 50000, bytes: 64 * 1024 * 1024, period: 10_000 });
    expect(s3.columns!.find((c) => c.name === 'amount_minor')).toEqual({ name: 'amount_minor', type: 'int64', nullable: true });
    expect(s3.columns!.find((c) => c.name === 'occurred_at')).toEqual({ name: 'occurred_at', type: 'timestamp_us', nullable: false });
    const key = renderPathTemplate(s3.path, { topic: 'sluice.agent-events', partition: 2, firstOffset: '41', record: { event_type: 'investment_made' }, eventTimeMs: eventTimeMillis(1769903999999999, 'unix_us') });
    expect(key).toBe('lake/agent_events/event_type=investment_made/dt=2026-01-31/sluice.agent-events+2+41.parquet');
  });

  it('dead-letters to its own topic, and takes the bucket from SLUICE_S3_BUCKET', () => {
    expect(lake.dlq).toEqual({ topic: 'sluice.agent-events.export.dlq', include_original: true, headers: { 'sluice.pipeline': 'lake' } });
    expect(loadPipeline(LAKE, { ...SERVERS_ENV, SLUICE_S3_BUCKET: 'prod-lake' }, { expressions: null }).output.config.bucket).toBe('prod-lake');
    expect(lake.http.port).toBe(9466);
    expect(lake.logger).toEqual({ level: 'info', progress_interval: 30000 });
  });

  const evaluator = jsonata();
  it.skipIf(!evaluator)('flattens every event type of the Avro envelope, keeping money exact', async () => {
    const mapping = evaluator!(lake.pipeline.processors[0]!.config as string);
    const envelope = {
      specversion: '1.0',
      id: '7d1e0c8a-0000-4000-8000-000000000001',
      type: 'io.sluice.agent.investment_made',
      source: '/channels/agent_app',
      time: 1767225600000000,
      subject: 'agent-1',
      schema_version: 1,
      received_at: 1767225601000000,
      correlation_id: null,
      session_id: 's-1',
      data: { 'io.sluice.events.InvestmentMade': { customer_id: 'c-1', amount_minor: 9007199254740993n, currency: 'USD', product: 'bonds', metadata: '{"product":"bonds"}' } },
    };
    expect({ ...((await mapping.evaluate(envelope)) as object) }).toEqual({
      event_id: '7d1e0c8a-0000-4000-8000-000000000001',
      event_type: 'investment_made',
      agent_id: 'agent-1',
      customer_id: 'c-1',
      amount_minor: 9007199254740993n,
      currency: 'USD',
      occurred_at: 1767225600000000,
      received_at: 1767225601000000,
      source: 'agent_app',
      session_id: 's-1',
      correlation_id: null,
      product: 'bonds',
      metadata: '{"product":"bonds"}',
      schema_version: 1,
    });
    const onboarded = { ...envelope, type: 'io.sluice.agent.customer_onboarded', data: { 'io.sluice.events.CustomerOnboarded': { customer_id: 'c-2', metadata: null } } };
    expect({ ...((await mapping.evaluate(onboarded)) as object) }).toMatchObject({ event_type: 'customer_onboarded', customer_id: 'c-2', metadata: null });
    expect(await mapping.evaluate(onboarded)).not.toHaveProperty('amount_minor');
  });
});

describe('loadPipeline errors', () => {
  it('throws one PipelineConfigError (a ConfigError) listing every problem', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-pipeline-'));
    const file = join(dir, 'broken.yaml');
    writeFileSync(file, 'input:\n  kafka:\n    topics: [a]\noutput:\n  s3:\n    bucket: b-bucket\n    path: x\ndlq:\n  topic: a.dlq\n  include_original: maybe\n');
    let error: unknown;
    try {
      loadPipeline(file, { ...SERVERS_ENV }, { expressions: null });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PipelineConfigError);
    expect(error).toBeInstanceOf(ConfigError);
    const e = error as PipelineConfigError;
    expect(e.pipelineProblems.map((p) => `${p.line}:${p.column} ${p.path}`)).toEqual(['2:3 input.kafka.consumer_group', '7:11 output.s3.path', '10:21 dlq.include_original']);
    expect(e.message).toContain(`file ${file}:10:21: dlq.include_original: expected true or false, got "maybe". Fix: write true or false`);
  });

  it('throws for a missing file', () => {
    expect(() => loadPipeline('/nonexistent.yaml', {})).toThrow(/cannot read the file/);
  });
});

describe('units', () => {
  it('parses durations and sizes as written in config', () => {
    expect([parseDuration('500ms'), parseDuration('1s'), parseDuration('5m'), parseDuration('1h30m'), parseDuration('1.5s'), parseDuration('250us')]).toEqual([500, 1000, 300000, 5400000, 1500, 0.25]);
    expect([parseDuration('1'), parseDuration('1 sec'), parseDuration(''), parseDuration('s')]).toEqual([undefined, undefined, undefined, undefined]);
    expect([parseByteSize('64MiB'), parseByteSize('5MB'), parseByteSize('512kib'), parseByteSize(1024), parseByteSize('1_000')]).toEqual([67108864, 5000000, 524288, 1024, 1000]);
    expect([parseByteSize('64 megs'), parseByteSize(-1), parseByteSize('MiB')]).toEqual([undefined, undefined, undefined]);
    expect([formatDuration(1500), formatDuration(60000), formatDuration(250), formatByteSize(67108864), formatByteSize(1000)]).toEqual(['1.5s', '1m', '250ms', '64MiB', '1000B']);
    expect([formatDuration(30 * 86_400_000), formatDuration(36 * 3_600_000), formatDuration(86_400_000)]).toEqual(['30d', '36h', '1d']);
  });
});
