import jsonata from 'jsonata';
import { ConfigError } from '../../core/errors/errors.js';
import { createLogger } from '../../core/log/logger.js';
import { jsonataLanguage } from '../../core/pipeline/expressions.js';
import { loadPipeline } from '../../core/pipeline/lint.js';
import type { PipelineConfig } from '../../core/pipeline/pipeline.js';
import { kafkaInputOf } from '../../core/pipeline/input-config.js';
import { PipelineConfigError, formatProblem } from '../../core/pipeline/problems.js';
import { RecordPath, type RecordOutcome } from '../record-path.js';
import { ExportMetrics } from '../metrics.js';
import { outputComponent } from '../outputs/index.js';
import type { Output } from '../outputs/output.js';
import { S3Batch } from '../outputs/s3-batch.js';
import { Registry } from 'prom-client';
import type { PartitionSteps } from '../steps.js';
import { diffValues, normalise, show } from './diff.js';
import { LocalSchemas } from './local-schemas.js';
import { loadTestCases, type Expectation, type TestCase, type TestInput } from './spec.js';

/**
 * Runs a pipeline's test cases through its real record path (record-path.ts: decode ->
 * processors -> placement into a file with its rendered key -> or a DLQ reason), with the
 * schema files of the tests as the registry. No server is contacted.
 */

export interface Failure {
  /** The line of the input (or expectation) that failed. */
  line: number;
  input: number;
  lines: string[];
}

export interface CaseResult {
  name: string;
  file: string;
  line: number;
  failures: Failure[];
}

export interface PipelineResult {
  pipeline: string;
  /** Problems that stopped the pipeline's tests from running (config or test definition errors). */
  errors: string[];
  cases: CaseResult[];
}

/** Server settings no test contacts, so a pipeline loads without a stack (set ones win). */
const OFFLINE_ENV = {
  SLUICE_KAFKA_BROKERS: 'sluice-test.invalid:9092',
  SLUICE_SCHEMA_REGISTRY_URL: 'http://sluice-test.invalid',
  SLUICE_S3_BUCKET: 'sluice-test',
};

export async function runPipelineTests(pipelineFile: string, env: NodeJS.ProcessEnv = process.env): Promise<PipelineResult> {
  const result: PipelineResult = { pipeline: pipelineFile, errors: [], cases: [] };
  const { cases, problems } = loadTestCases(pipelineFile);
  for (const p of problems) result.errors.push(`${p.file}:${p.line}: ${p.message}`);
  if (problems.length > 0 || cases.length === 0) return result;
  let pipeline: PipelineConfig;
  try {
    pipeline = loadPipeline(pipelineFile, { ...OFFLINE_ENV, ...env }, { expressions: jsonataLanguage() ?? null });
  } catch (error) {
    if (error instanceof PipelineConfigError) result.errors.push(...error.pipelineProblems.map(formatProblem));
    else result.errors.push(`${pipelineFile}: ${(error as Error).message}`);
    return result;
  }
  for (const c of cases) {
    const schemas = new LocalSchemas();
    let path: RecordPath;
    try {
      // `log` processors write to stderr, beside the report on stdout.
      path = new RecordPath(pipeline, schemas, testOutput(pipeline), createLogger({ name: 'sluice-test', level: pipeline.logger.level, destination: process.stderr }));
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      result.errors.push(error.message);
      return result;
    }
    result.cases.push(await runCase(pipeline, path, schemas, c));
  }
  return result;
}

async function runCase(pipeline: PipelineConfig, path: RecordPath, schemas: LocalSchemas, c: TestCase): Promise<CaseResult> {
  const defaultTopic = kafkaInputOf(pipeline)?.topics?.[0] ?? 'test';
  // One chain of processor state per input partition, as the runner has: a dedupe remembers across the case's records.
  const steps = new Map<string, PartitionSteps>();
  const nextOffset = new Map<string, bigint>();
  const result: CaseResult = { name: c.name, file: c.file, line: c.line, failures: [] };
  for (const [i, input] of c.inputs.entries()) {
    const topic = input.topic ?? defaultTopic;
    const tp = `${topic}/${input.partition}`;
    const offset = input.offset ?? String(nextOffset.get(tp) ?? 0n);
    nextOffset.set(tp, BigInt(offset) + 1n);
    if (!steps.has(tp)) steps.set(tp, path.chain.forPartition());
    let bytes: Buffer | null;
    try {
      bytes = encodeValue(input, topic, schemas);
    } catch (error) {
      result.failures.push({ line: input.line, input: i + 1, lines: [`${c.file}:${input.line}: ${(error as Error).message}`] });
      continue;
    }
    // A batch of its own, so the object key is the one of a file this record starts.
    const batch = path.openBatch(topic, input.partition, steps.get(tp)!);
    let outcome: RecordOutcome;
    let key: string | undefined;
    try {
      await path.prepare(topic, bytes);
      outcome = await path.process(batch, { key: null, value: bytes, headers: {}, offset, timestamp: '0' });
      if (outcome.kind === 'placed' && batch.output instanceof S3Batch) key = batch.output.seal()[0]?.key;
    } catch (error) {
      result.failures.push({ line: input.line, input: i + 1, lines: [`${c.file}:${input.line}: the record path failed: ${(error as Error).message}`] });
      continue;
    }
    const lines = await judge(input.expect!, outcome, key, c.file);
    if (lines.length > 0) result.failures.push({ line: input.expect!.line, input: i + 1, lines });
  }
  return result;
}

function encodeValue(input: TestInput, topic: string, schemas: LocalSchemas): Buffer | null {
  const v = input.value;
  switch (v.kind) {
    case 'tombstone':
      return null;
    case 'raw':
      return v.bytes;
    case 'json':
      return Buffer.from(jsonText(v.value), 'utf8');
    case 'avro': {
      const id = schemas.register(topic, v.schemaFile);
      return schemas.encode(id, v.value);
    }
  }
}

/** JSON with bigints written as plain integers (exact). */
function jsonText(value: unknown): string {
  return JSON.stringify(value, (_k, x: unknown) => (typeof x === 'bigint' ? `\u0000${x}\u0000` : x)).replace(/"\\u0000(-?\d+)\\u0000"/g, '$1');
}

function describeOutcome(o: RecordOutcome): string {
  if (o.kind === 'placed') return `a row ${show(normalise(o.value))}`;
  if (o.kind === 'dropped') return `dropped by ${o.by}`;
  return `the DLQ with reason ${o.reason} (by ${o.by}: ${o.error})`;
}

async function judge(e: Expectation, o: RecordOutcome, key: string | undefined, file: string): Promise<string[]> {
  const at = (line: number) => `${file}:${line}`;
  if (e.dlq) {
    if (o.kind === 'dead' && o.reason === e.dlq.value) return [];
    return [`${at(e.dlq.line)}: expected the DLQ with reason ${e.dlq.value}, got ${describeOutcome(o)}`];
  }
  if (e.dropped) {
    if (o.kind === 'dropped' && (e.dropped.value === true || e.dropped.value === o.by)) return [];
    return [`${at(e.dropped.line)}: expected dropped${e.dropped.value === true ? '' : ` by ${e.dropped.value}`}, got ${describeOutcome(o)}`];
  }
  if (o.kind !== 'placed') return [`${at(e.line)}: expected a row, got ${describeOutcome(o)}`];
  const row = normalise(o.value);
  const lines: string[] = [];
  if (e.row) {
    const diff = diffValues(normalise(e.row.value), row, 'row', true);
    if (diff.length > 0) lines.push(`${at(e.row.line)}: row differs (- expected, + got):`, ...diff.map((d) => `  ${d}`));
  }
  if (e.contains) {
    const diff = diffValues(normalise(e.contains.value), row, 'row', false);
    if (diff.length > 0) lines.push(`${at(e.contains.line)}: row does not contain what is expected (- expected, + got):`, ...diff.map((d) => `  ${d}`));
  }
  if (e.check) {
    try {
      const verdict = await jsonata(e.check.text).evaluate(row);
      if (verdict !== true) lines.push(`${at(e.check.line)}: check ${e.check.text} yielded ${show(verdict)}, not true, for the row ${show(row)}`);
    } catch (error) {
      const err = error as { message?: string; code?: string };
      lines.push(`${at(e.check.line)}: check ${e.check.text} failed: ${err.code ? `${err.code}: ` : ''}${err.message ?? String(error)}`);
    }
  }
  if (e.key && e.key.value !== key) lines.push(`${at(e.key.line)}: object key differs:`, `  - ${e.key.value}`, `  + ${key ?? '(none)'}`);
  return lines;
}

/** The pipeline's own output, for its placement only (rows cut to its columns, keys rendered): nothing is connected or written. */
function testOutput(pipeline: PipelineConfig): Output {
  return outputComponent(pipeline.output.type).create(pipeline.output.config, { pipeline, logger: createLogger({ name: 'sluice-test', level: 'silent' }), metrics: new ExportMetrics(new Registry()) });
}
