/**
 * Redpanda Connect (Benthos) names that users bring with their configs, and what they are
 * called here, so lint answers "Redpanda Connect's `addresses` is `brokers` here" instead
 * of a bare "unknown field". docs/redpanda-connect-migration.md shows the same table
 * (test/unit/pipeline-redpanda-hints.test.ts keeps the two in step).
 */

export interface RenamedName {
  /** The Redpanda Connect name. */
  from: string;
  /** What to write instead (a name, or a short instruction). */
  to: string;
  /** Where it applies: a component kind, or the config path of the object holding the field (`input.kafka`). */
  where: 'input' | 'processor' | 'output' | 'section' | string;
  note?: string;
}

export const REDPANDA_COMPONENTS: readonly RenamedName[] = [
  { from: 'kafka_franz', to: 'kafka', where: 'input' },
  { from: 'redpanda', to: 'kafka', where: 'input' },
  { from: 'redpanda_common', to: 'kafka', where: 'input' },
  { from: 'aws_s3', to: 's3', where: 'output' },
  { from: 'kafka_franz', to: 'kafka', where: 'output' },
  { from: 'redpanda', to: 'kafka', where: 'output' },
  { from: 'bloblang', to: 'mapping', where: 'processor', note: 'mappings are JSONata here, not Bloblang' },
  { from: 'mutation', to: 'mapping', where: 'processor', note: 'a mapping returns the whole new record (JSONata)' },
  { from: 'dedup', to: 'dedupe', where: 'processor' },
  { from: 'output_resources', to: 'one output a pipeline file', where: 'section' },
  { from: 'input_resources', to: 'one input a pipeline file', where: 'section' },
  { from: 'cache_resources', to: 'dedupe keeps its own cache', where: 'section' },
  { from: 'metrics', to: 'http', where: 'section', note: 'Prometheus metrics are always served at http.port /metrics' },
  { from: 'buffer', to: 'nothing: batching lives in the output', where: 'section' },
];

export const REDPANDA_FIELDS: readonly RenamedName[] = [
  { from: 'addresses', to: 'brokers', where: 'input.kafka' },
  { from: 'seed_brokers', to: 'brokers', where: 'input.kafka' },
  { from: 'regexp_topics', to: 'topic_pattern', where: 'input.kafka', note: 'a regular expression instead of topics' },
  { from: 'start_from_oldest', to: 'start_from: earliest', where: 'input.kafka' },
  { from: 'start_offset', to: 'start_from', where: 'input.kafka' },
  { from: 'checkpoint_limit', to: 'max_batch_records', where: 'input.kafka' },
  { from: 'force_path_style_urls', to: 'force_path_style', where: 'output.s3' },
  { from: 'content_type', to: 'format', where: 'output.s3', note: 'parquet, jsonl or csv' },
  { from: 'threads', to: 'nothing: one runner per partition', where: 'pipeline' },
];

/** The hint for a component name Redpanda Connect uses, or undefined. */
export function redpandaComponentHint(kind: string, name: string): string | undefined {
  const hit = REDPANDA_COMPONENTS.find((r) => r.where === kind && r.from === name);
  return hit ? renamed(hit) : undefined;
}

/** The hint for a field name Redpanda Connect uses under the object at `path` (`input.kafka`), or undefined. */
export function redpandaFieldHint(path: string, name: string): string | undefined {
  const hit = REDPANDA_FIELDS.find((r) => r.where === path && r.from === name);
  return hit ? renamed(hit) : undefined;
}

function renamed(r: RenamedName): string {
  const to = /^[a-z0-9_]+$/.test(r.to) ? `\`${r.to}\`` : r.to;
  return `Redpanda Connect's \`${r.from}\` is ${to} here${r.note ? ` (${r.note})` : ''}`;
}

/**
 * Redpanda Connect's `${! ... }` interpolation (Bloblang) in a Sluice template: the Sluice
 * form when the Bloblang is one of the common ones (`meta("kafka_topic")`, `json("a.b")`,
 * `this.a`), else the list of variables.
 */
export function redpandaInterpolationHint(body: string): string {
  const expr = body.replace(/^!/, '').trim();
  const meta = /^(?:meta|metadata|@)\(?"?(kafka_[a-z_]+)"?\)?$/.exec(expr) ?? /^@(kafka_[a-z_]+)$/.exec(expr);
  const field = /^json\("([A-Za-z_][\w.]*)"\)$/.exec(expr) ?? /^this\.([A-Za-z_][\w.]*)$/.exec(expr);
  let sluice: string | undefined;
  if (meta) sluice = { kafka_topic: '${topic}', kafka_partition: '${partition}', kafka_offset: '${first_offset}' }[meta[1]!];
  else if (field) sluice = `\${data.${field[1]}}`;
  else if (/^(now|timestamp_unix)\(\)|\.ts_format\(/.test(expr)) sluice = '${time:yyyy-MM-dd} (the time of `time_field`, not the clock)';
  return sluice
    ? `Sluice's template for it is ${sluice}`
    : "Sluice's templates take ${topic}, ${partition}, ${first_offset}, ${last_offset}, ${data.<field>}, ${time:<format>}";
}

/** Whether an expression looks like Bloblang (`root.x = this.y`, `root = ...`): valid JSONata, as a comparison, but not what was meant. */
export function looksLikeBloblang(text: string): boolean {
  return /^\s*root(\.[\w.]+)?\s*=[^=]/m.test(text);
}

export const BLOBLANG_FIX = 'this looks like Bloblang: Redpanda Connect\'s `root.x = this.y` is the JSONata object `{"x": y}` here (the result replaces the record)';
