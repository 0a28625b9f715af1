import { stringify as losslessStringify } from 'lossless-json';
import { defineComponent } from '../../core/pipeline/component.js';
import { byteSize, duration, int, object, oneOf, string, template, type Infer } from '../../core/pipeline/fields.js';
import { eventTimeMillis, renderPathTemplate, TemplateValueError, type TimeFormat } from '../../core/pipeline/path-template.js';
import { DLQ_REASONS } from '../../core/dlq/reasons.js';
import type { Output, OutputBatch, OutputComponent, OutputContext, OutputRecord, PreparedWrite, Refusal, WriteContext } from './output.js';
import { TIME_FORMATS } from './s3.js';

const config = object(
  {
    path: template({
      doc: "Optional: an object key template as the s3 and file outputs have (`${topic}`, `${partition}`, `${first_offset}`, `${data.field}`, `${time:...}`). When set, each line is `{\"key\": <the key the record's file would get>, \"row\": <the record>}`, to see where records would land.",
      optional: true,
      examples: ['events/event_type=${data.event_type}/${topic}+${partition}+${first_offset}.parquet'],
    }),
    time_field: string({ doc: 'The record field holding the event time, which `${time:...}` in `path` formats (in UTC).', optional: true, examples: ['occurred_at'] }),
    time_format: oneOf(TIME_FORMATS, { doc: 'How `time_field` is encoded (as for the s3 output).', default: 'unix_us' }),
    batching: object(
      {
        count: int({ doc: 'Write the lines when this many records wait.', default: 1000, min: 1, max: 10_000_000 }),
        bytes: byteSize({ doc: 'Write the lines when the records waiting reach about this size (input bytes).', default: '1MiB', min: 1 }),
        period: duration({ doc: 'Write the lines at the latest this long after the first waiting record (a line typed in a terminal shows up this fast).', default: '100ms', min: 1 }),
      },
      { doc: 'When waiting records are written (a finite input writes everything at its end anyway).' },
    ),
  },
  { doc: 'stdout settings (all optional: `--set output=stdout` takes these defaults).' },
);

export type StdoutOutputConfig = Infer<typeof config>;

export const stdoutOutputSpec = defineComponent({
  name: 'stdout',
  kind: 'output',
  summary: 'Writes each record as it leaves the processors to standard output, one JSON line each (or its rendered object key and the record).',
  description: [
    "For trying a pipeline in a terminal: `sluice run --set input=stdin --set output=stdout connectors/exports/lake.yaml < sample.jsonl` prints the lake rows the mapping makes. Integers beyond 2^53 are written exactly; bytes as base64. Logs go to stderr while an output writes to stdout, so stdout holds only the records.",
    "The record is what the processors made: the `columns` of the output it replaces are not applied (a value its column type cannot hold would go to the DLQ there, not here). A record whose `path` cannot be rendered goes to the DLQ (`path_error`), as with s3. No offsets are kept: the input's offsets are committed after the lines are written (`offsets: 'consumer'`), so a kafka input replays at least once.",
  ].join('\n\n'),
  config,
  example: ['stdout:', '  path: events/event_type=${data.event_type}/${topic}+${partition}+${first_offset}.jsonl'].join('\n'),
});

/** A batch's records (or key + record) as JSON lines. Keys carry the file's first offset, so records are grouped as files would be. */
class StdoutBatch implements OutputBatch {
  private readonly lines: { group: string | undefined; value: unknown }[] = [];
  /** Per rendered group (key with offset placeholders): the first and last offset and the first record, as a file has. */
  private readonly groups = new Map<string, { first: string; last: string; record: unknown; eventTimeMs: number | undefined }>();

  constructor(
    private readonly topic: string,
    private readonly partition: number,
    private readonly config: StdoutOutputConfig,
  ) {}

  add(record: OutputRecord): Refusal | undefined {
    const path = this.config.path;
    if (!path) {
      this.lines.push({ group: undefined, value: record.value });
      return undefined;
    }
    try {
      const eventTimeMs = this.config.time_field ? eventTimeMillis(fieldAt(record.value, this.config.time_field.split('.')), this.config.time_format as TimeFormat) : undefined;
      const group = renderPathTemplate(path, { topic: this.topic, partition: this.partition, firstOffset: FIRST, lastOffset: LAST, record: record.value, eventTimeMs });
      const g = this.groups.get(group);
      if (g) g.last = record.offset;
      else this.groups.set(group, { first: record.offset, last: record.offset, record: record.value, eventTimeMs });
      this.lines.push({ group, value: record.value });
      return undefined;
    } catch (error) {
      if (error instanceof TemplateValueError) return { reason: DLQ_REASONS.pathError, error: error.message };
      throw error;
    }
  }

  get rows(): number {
    return this.lines.length;
  }

  /** The JSON lines to write. */
  text(): string {
    const keys = new Map<string, string>();
    for (const [group, g] of this.groups) {
      keys.set(group, renderPathTemplate(this.config.path!, { topic: this.topic, partition: this.partition, firstOffset: g.first, lastOffset: g.last, record: g.record, ...(g.eventTimeMs !== undefined ? { eventTimeMs: g.eventTimeMs } : {}) }));
    }
    let out = '';
    for (const line of this.lines) {
      const row = json(line.value);
      out += line.group === undefined ? `${row}\n` : `{"key":${JSON.stringify(keys.get(line.group))},"row":${row}}\n`;
    }
    return out;
  }
}

const FIRST = '\u0000first\u0000';
const LAST = '\u0000last\u0000';

function fieldAt(value: unknown, path: string[]): unknown {
  let v = value;
  for (const name of path) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[name] : undefined;
  return v;
}

/** JSON with exact bigints (lossless-json writes them as numbers) and bytes as base64. */
function json(value: unknown): string {
  return losslessStringify(value, (_key, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v)) ?? 'null';
}

/** The stdout output: each flush writes its batch's lines and waits until the stream took them. */
export class StdoutOutput implements Output<StdoutBatch> {
  readonly type = 'stdout';
  readonly offsets = 'consumer' as const;
  readonly batching: Output['batching'];
  readonly describe = { to: 'stdout' };

  constructor(
    private readonly config: StdoutOutputConfig,
    private readonly stream: NodeJS.WritableStream = process.stdout,
  ) {
    this.batching = config.batching;
  }

  async connect(): Promise<void> {}
  async check(): Promise<void> {}
  async close(): Promise<void> {}

  openBatch(topic: string, partition: number): StdoutBatch {
    return new StdoutBatch(topic, partition, this.config);
  }

  async write(batch: StdoutBatch, _ctx: WriteContext): Promise<PreparedWrite> {
    const text = batch.text();
    await new Promise<void>((resolve, reject) => this.stream.write(text, (error) => (error ? reject(error) : resolve())));
    return { rejected: [], stats: { bytes: Buffer.byteLength(text), objects: 0 }, commit: async () => undefined, abort: async () => undefined };
  }
}

/** The stdout output component: its spec and its constructor. */
export const stdoutOutput: OutputComponent<StdoutOutputConfig> = {
  spec: stdoutOutputSpec,
  create: (config, _ctx: OutputContext) => new StdoutOutput(config),
};
