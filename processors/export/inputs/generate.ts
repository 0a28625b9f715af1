import jsonata from 'jsonata';
import { stringify as losslessStringify } from 'lossless-json';
import { defineComponent } from '../../core/pipeline/component.js';
import { duration, expression, int, object, type Infer } from '../../core/pipeline/fields.js';
import type { Input, InputComponent, InputContext } from './input.js';
import { LocalInput, type ConsumedRecordInput, type RecordSource } from './local-delivery.js';

const config = object(
  {
    mapping: expression({
      doc: 'A JSONata expression whose result is one record. `$i` is the record\'s number (0, 1, 2...); `$random()`, `$now()`, `$millis()` and every JSONata function work.',
      examples: ['{ "event_id": "e-" & $i, "agent_id": "agent-" & ($i % 10), "amount_minor": $floor($random() * 10000) }'],
    }),
    count: int({ doc: 'Records to generate, then the run ends (flushing everything, exit 0). 0: no end.', default: 0, min: 0, max: Number.MAX_SAFE_INTEGER }),
    interval: duration({
      doc: 'Time between two records (the rate: `10ms` is 100 records/s). `0s`: as fast as the pipeline takes them (the batching backpressure sets the pace).',
      default: '1s',
      min: 0,
    }),
  },
  { doc: 'generate settings.' },
);

export type GenerateInputConfig = Infer<typeof config>;

export const generateInputSpec = defineComponent({
  name: 'generate',
  kind: 'input',
  summary: "Generates records from a JSONata template, `count` of them and/or one every `interval`, like Redpanda Connect's generate input.",
  description: [
    'For trying a pipeline, feeding a demo or a load test with no producer: records are JSON values on topic `generate`, partition 0, offset = the record\'s number (`$i`), decoded as `decode: json`. With `count` the run ends once every record is flushed (exit 0); without it the input runs until stopped.',
    'A mapping that fails, or yields nothing, stops the run with the error and the record number: the template is the configuration, not data. No broker: dead letters (a record the pipeline rejects) are written to stderr as JSON lines, and delivery is at least once within the process, as for `stdin`.',
  ].join('\n\n'),
  config,
  example: ['generate:', '  mapping: |', '    { "event_id": "e-" & $i, "event_type": "deposit_made", "amount_minor": 100 + $i }', '  count: 1000', '  interval: 0s'].join('\n'),
});

/** Records from the template, paced by the interval. */
class TemplateSource implements RecordSource {
  private readonly expr: ReturnType<typeof jsonata>;
  private i = 0;
  private readonly started = Date.now();
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private wakeTimer: (() => void) | undefined;

  constructor(private readonly config: GenerateInputConfig) {
    this.expr = jsonata(config.mapping);
  }

  async next(max: number): Promise<ConsumedRecordInput[]> {
    const { count, interval } = this.config;
    let n = count > 0 ? Math.min(max, count - this.i) : max;
    if (n <= 0 || this.closed) return [];
    if (interval > 0) {
      // Record i is due at start + i * interval: wait for the next one, then take every one due.
      const wait = this.started + this.i * interval - Date.now();
      if (wait > 0) {
        await new Promise<void>((resolve) => {
          this.wakeTimer = resolve;
          this.timer = setTimeout(resolve, wait);
        });
        if (this.closed) return [];
      }
      const due = Math.floor((Date.now() - this.started) / interval) + 1 - this.i;
      n = Math.max(1, Math.min(n, due));
    }
    const out: ConsumedRecordInput[] = [];
    for (let k = 0; k < n; k++) {
      const i = this.i++;
      let value: unknown;
      try {
        value = await this.expr.evaluate({}, { i });
      } catch (error) {
        const e = error as { message?: string; code?: string };
        throw new Error(`input.generate.mapping failed at record ${i}: ${e.code ? `${e.code}: ` : ''}${e.message ?? String(error)}`);
      }
      if (value === undefined) throw new Error(`input.generate.mapping yielded nothing (undefined) at record ${i}: make it yield a value, e.g. an object { ... }`);
      out.push({ value: Buffer.from(losslessStringify(value) ?? 'null', 'utf8'), offset: BigInt(i) });
    }
    return out;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.wakeTimer?.();
  }
}

/** The generate input (`offsets: 'none'`, see input.ts): finite with a count. */
export class GenerateInput extends LocalInput implements Input {
  readonly type = 'generate';
  readonly finite: boolean;
  readonly decode = 'json' as const;
  readonly describe: Record<string, unknown>;

  constructor(config: GenerateInputConfig, ctx: InputContext) {
    super(new TemplateSource(config), 'generate', ctx);
    this.finite = config.count > 0;
    this.describe = { count: config.count || 'unlimited', intervalMs: config.interval };
  }

  get ended(): Promise<void> | undefined {
    return this.finite ? this.delivery.ended : undefined;
  }
}

/** The generate input component: its spec and its constructor. */
export const generateInput: InputComponent<GenerateInputConfig> = {
  spec: generateInputSpec,
  create: (config, ctx) => new GenerateInput(config, ctx),
};
