import { createInterface, type Interface } from 'node:readline';
import { defineComponent } from '../../core/pipeline/component.js';
import { object, oneOf, type Infer } from '../../core/pipeline/fields.js';
import type { Input, InputComponent, InputContext } from './input.js';
import { LocalInput, type ConsumedRecordInput, type RecordSource } from './local-delivery.js';

const config = object(
  {
    decode: oneOf(['json', 'raw'] as const, {
      doc: 'How each line is decoded: `json` (one JSON value a line; integers beyond 2^53 exact, as BigInt) or `raw` (the line as bytes).',
      default: 'json',
    }),
  },
  { doc: 'stdin settings (all optional: `--set input=stdin` takes these defaults).' },
);

export type StdinInputConfig = Infer<typeof config>;

export const stdinInputSpec = defineComponent({
  name: 'stdin',
  kind: 'input',
  summary: 'Reads records from standard input, one a line (JSON Lines); the run ends at EOF once every record is flushed.',
  description: [
    "For trying a pipeline in a terminal with no server: `sluice run --set input=stdin --set output=stdout connectors/exports/lake.yaml < sample.jsonl`. Each non-empty line is one record's value, on topic `stdin`, partition 0, offset = the line's number - 1 (what `${topic}`, `${partition}` and `${first_offset}` render in a path, and what a dead letter names). At EOF every open batch is flushed and the command exits 0.",
    "Values are JSON, never Avro: the record path's decode step is this input's `decode`, not the replaced kafka input's `decode: avro_registry`, and no registry is asked. A pipeline written for Avro records takes their JSON form as the Avro decode gives it (a union of records as `{\"io.sluice.events.DepositMade\": {...}}`, timestamps as epoch numbers in their unit): the shape `sluice test`'s `avro:` values are written in. A line that is not JSON goes to the DLQ as `decode_error` with the parser's message; the run goes on.",
    'No broker: dead letters are written to stderr as JSON lines (`{"dead_letter": {"reason", "error", "offset", ...}, "value": ...}`). No consumer group either: nothing records how far a run got, so delivery is at least once within the process (a flush that fails is retried from the records held in memory, 5 times) and a new run reads its input from the start.',
  ].join('\n\n'),
  config,
  example: ['stdin:', '  decode: json'].join('\n'),
});

/** Lines as records; blank lines are skipped (their offsets too). */
class LineSource implements RecordSource {
  private readonly lines: Interface;
  private readonly queue: ConsumedRecordInput[] = [];
  private closed = false;
  private waiting: (() => void) | undefined;
  private paused = false;
  private line = 0n;

  constructor(stream: NodeJS.ReadableStream) {
    this.lines = createInterface({ input: stream, crlfDelay: Infinity });
    this.lines.on('line', (text: string) => {
      const offset = this.line++;
      if (text.trim() === '') return;
      this.queue.push({ value: Buffer.from(text, 'utf8'), offset });
      if (this.queue.length >= 10_000 && !this.paused) {
        this.paused = true;
        this.lines.pause();
      }
      this.notify();
    });
    this.lines.on('close', () => {
      this.closed = true;
      this.notify();
    });
  }

  async next(max: number): Promise<ConsumedRecordInput[]> {
    while (this.queue.length === 0 && !this.closed) await new Promise<void>((r) => (this.waiting = r));
    const out = this.queue.splice(0, max);
    if (this.paused && this.queue.length < 1000) {
      this.paused = false;
      this.lines.resume();
    }
    return out;
  }

  close(): void {
    this.lines.close();
  }

  private notify(): void {
    const w = this.waiting;
    this.waiting = undefined;
    w?.();
  }
}

/** The stdin input: JSON lines from standard input, ending at EOF (`offsets: 'none'`, see input.ts). */
export class StdinInput extends LocalInput implements Input {
  readonly type = 'stdin';
  readonly finite = true;
  readonly describe = { from: 'stdin' };
  readonly decode: StdinInputConfig['decode'];

  constructor(config: StdinInputConfig, ctx: InputContext) {
    super(new LineSource(ctx.stdin ?? process.stdin), 'stdin', ctx);
    this.decode = config.decode;
  }

  get ended(): Promise<void> {
    return this.delivery.ended;
  }
}

/** The stdin input component: its spec and its constructor. */
export const stdinInput: InputComponent<StdinInputConfig> = {
  spec: stdinInputSpec,
  create: (config, ctx) => new StdinInput(config, ctx),
};
