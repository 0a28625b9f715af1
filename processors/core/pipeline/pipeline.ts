import { basename, extname } from 'node:path';
import { componentChoice, section, type ComponentInstance } from './component.js';
import {
  INPUTS,
  OUTPUTS,
  PROCESSORS,
  dlqSection,
  httpSection,
  loggerSection,
  type DedupeConfig,
  type DlqConfig,
  type DropConfig,
  type FilterConfig,
  type HttpConfig,
  type KafkaInputConfig,
  type LoggerConfig,
  type MappingConfig,
  type S3OutputConfig,
  type SelectConfig,
  type LogConfig,
} from './components/index.js';
import type { GenerateInputConfig } from '../../export/inputs/generate.js';
import type { StdinInputConfig } from '../../export/inputs/stdin.js';
import { INVALID, list, object, resolveField, type AnyField, type ParseContext } from './fields.js';
import type { MapNode } from './source.js';
import type { KafkaOutputConfig } from '../../export/outputs/kafka.js';
import { redpandaComponentHint } from './redpanda-names.js';
import { suggestion } from './suggest.js';

/**
 * A pipeline file: the top-level sections, their types as loaded, and the rules that
 * span sections. Components themselves are declared in components/.
 */

export type InputConfig =
  | { type: 'kafka'; label: string; config: KafkaInputConfig }
  | { type: 'stdin'; label: string; config: StdinInputConfig }
  | { type: 'generate'; label: string; config: GenerateInputConfig };

export type ProcessorConfig =
  | { type: 'mapping'; label: string; config: MappingConfig }
  | { type: 'filter'; label: string; config: FilterConfig }
  | { type: 'dedupe'; label: string; config: DedupeConfig }
  | { type: 'select'; label: string; config: SelectConfig }
  | { type: 'drop'; label: string; config: DropConfig }
  | { type: 'log'; label: string; config: LogConfig };
export type OutputConfig = { type: 's3'; label: string; config: S3OutputConfig };

/** A loaded pipeline: every default applied, durations in ms, sizes in bytes, templates parsed. */
export interface PipelineConfig {
  /** The file's base name without extension (`lake`), for logs, metrics and DLQ headers. */
  name: string;
  file: string;
  input: InputConfig;
  pipeline: { processors: ProcessorConfig[] };
  output: OutputConfig;
  dlq: DlqConfig;
  http: HttpConfig;
  logger: LoggerConfig;
}

/** The top-level sections, in file order. */
export const PIPELINE_SECTIONS: Readonly<Record<string, AnyField>> = {
  input: componentChoice('input', INPUTS, {
    doc: 'Where records come from: exactly one input.',
    examples: [{ kafka: { topics: ['sluice.agent-events'], consumer_group: 'sluice-export-lake' } }],
  }),
  pipeline: object(
    {
      processors: list(componentChoice('processor', PROCESSORS, { doc: 'a processor' }), {
        doc: 'Processors applied to every record, in order. Each list item names one processor, optionally with a `label` (used in metrics and in the DLQ `sluice.dlq.processor` header).',
        default: [],
      }),
    },
    { doc: 'Processing between input and output.' },
  ),
  output: componentChoice('output', OUTPUTS, {
    doc: 'Where records go: exactly one output.',
    examples: [{ s3: { bucket: 'sluice-lake', path: 'events/${topic}+${partition}+${first_offset}.parquet' } }],
  }),
  dlq: section(dlqSection),
  http: section(httpSection),
  logger: section(loggerSection),
};

export function pipelineName(file: string): string {
  return basename(file, extname(file));
}

/** Parses the root mapping into a PipelineConfig, reporting into ctx; undefined when anything is wrong. */
export function parsePipeline(root: MapNode, ctx: ParseContext): PipelineConfig | undefined {
  const sectionNames = Object.keys(PIPELINE_SECTIONS);
  for (const entry of root.entries) {
    // `tests:` holds the pipeline's unit tests: `sluice test` reads and checks them, a run ignores them.
    if (entry.key === 'tests') continue;
    if (!(entry.key in PIPELINE_SECTIONS)) {
      ctx.report(entry.keyPos, [entry.key], `unknown section "${entry.key}"`, redpandaComponentHint('section', entry.key) ?? suggestion(entry.key, sectionNames, 'a pipeline file has the sections'));
    }
  }
  const parsed: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(PIPELINE_SECTIONS)) {
    const entry = root.entries.find((e) => e.key === name);
    const value = resolveField(field, entry?.value, { path: [name], pos: entry?.keyPos ?? root.pos }, ctx);
    if (value !== INVALID) parsed[name] = value;
  }
  crossSectionRules(parsed as Partial<Omit<PipelineConfig, 'name' | 'file'>>, ctx);
  if (ctx.problems.length > 0) return undefined;
  return { name: pipelineName(ctx.file), file: ctx.file, ...(parsed as Omit<PipelineConfig, 'name' | 'file'>) };
}

function crossSectionRules(p: Partial<Omit<PipelineConfig, 'name' | 'file'>>, ctx: ParseContext): void {
  const input = p.input?.type === 'kafka' ? p.input.config : undefined;
  kafkaOutputRules(p, ctx);
  if (input && p.dlq) {
    const dlq = p.dlq.topic;
    const pattern = input.topic_pattern !== undefined ? new RegExp(input.topic_pattern) : undefined;
    if (input.topics?.includes(dlq) || pattern?.test(dlq)) {
      ctx.report(ctx.locate(['dlq', 'topic']), ['dlq', 'topic'], `the DLQ topic ${dlq} is also consumed by input.kafka: dead letters would loop back in`, 'use a topic of its own, e.g. <input topic>.export.dlq');
    }
  }
  const processors = (p.pipeline?.processors ?? []) as ComponentInstance[];
  const labels = new Map<string, number>();
  processors.forEach((proc, i) => {
    const first = labels.get(proc.label);
    if (first !== undefined) {
      const path = ['pipeline', 'processors', `[${i}]`, 'label'];
      ctx.report(ctx.locate(path), path, `label "${proc.label}" is already used by processor [${first}]`, 'give each processor its own label');
    } else labels.set(proc.label, i);
  });
  const output = p.output?.type === 's3' ? p.output.config : undefined;
  const mapping = processors.findIndex((proc) => proc.type === 'mapping');
  if (output && mapping >= 0 && !output.columns && output.format !== 'jsonl') {
    const path = ['output', 's3', 'columns'];
    ctx.report(
      ctx.locate(path),
      path,
      `format ${output.format} needs typed columns, and after the mapping at pipeline.processors[${mapping}] the input's Avro schema no longer describes the records`,
      'declare the mapped fields under columns, e.g. columns: [{name: event_id, type: string}, {name: amount_minor, type: int64, nullable: true}]',
    );
  }
}

/** The kafka output writes to the input's cluster: a topic that is also consumed (or is the DLQ) would loop. */
function kafkaOutputRules(p: Partial<Omit<PipelineConfig, 'name' | 'file'>>, ctx: ParseContext): void {
  const output = p.output as ComponentInstance<KafkaOutputConfig> | undefined;
  if (output?.type !== 'kafka') return;
  const topic = output.config.topic;
  if (topic.parts.some((part) => part.kind !== 'text')) return;
  const path = ['output', 'kafka', 'topic'];
  const input = p.input?.type === 'kafka' ? p.input.config : undefined;
  const pattern = input?.topic_pattern !== undefined ? new RegExp(input.topic_pattern) : undefined;
  if (input?.topics?.includes(topic.text) || pattern?.test(topic.text)) {
    ctx.report(ctx.locate(path), path, `the output topic ${topic.text} is also consumed by input.kafka: every record would loop back in`, 'write to a topic of its own, e.g. <input topic>.json');
  } else if (p.dlq?.topic === topic.text) {
    ctx.report(ctx.locate(path), path, `the output topic ${topic.text} is the pipeline's DLQ topic`, 'write to a topic of its own, or move dlq.topic');
  }
}
