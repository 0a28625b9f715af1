import type { Message } from 'kafkajs';
import { lintPipelineText } from '../../processors/core/pipeline/lint.js';
import type { PipelineConfig } from '../../processors/core/pipeline/pipeline.js';
import type { Output, OutputBatch, OutputRecord, PreparedWrite, Refusal, RejectedRow, WriteContext } from '../../processors/export/outputs/output.js';

/**
 * Fakes for unit tests of the export runner and its flusher, in the way kafkajs tests its own
 * runner: an Output that keeps rows in memory and whose writes the test can hold, fail or
 * reject rows in, and a kafkajs consumer/producer pair that records commits, seeks and sends
 * and hands the test the runner's eachBatch and group-event listeners.
 */

export interface Deferred<T> {
  promise: Promise<T>;
  resolve(v: T): void;
  reject(e: unknown): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

export class MemoryBatch implements OutputBatch {
  readonly records: OutputRecord[] = [];
  constructor(private readonly refuse: (r: OutputRecord) => Refusal | undefined) {}
  add(record: OutputRecord): Refusal | undefined {
    const refused = this.refuse(record);
    if (!refused) this.records.push(record);
    return refused;
  }
  get rows(): number {
    return this.records.length;
  }
}

/** What the fake output saw, in order: `write topic/partition from..next`, `commit`, `abort`. */
export class FakeOutput implements Output<MemoryBatch> {
  readonly type = 'fake';
  readonly describe = {};
  readonly batching = { count: 2, bytes: 1 << 30, period: 60_000 };
  readonly calls: string[] = [];
  readonly contexts: WriteContext[] = [];
  /** Rows durable at the target (committed writes only). */
  readonly landed: OutputRecord[] = [];
  /** The next write waits for this (then it is cleared). */
  hold: Promise<void> | undefined;
  /** The next write throws this (then it is cleared). */
  failWith: unknown;
  /** Rows the target refuses at write time. */
  rejectRow: (r: OutputRecord) => string | undefined = () => undefined;
  /** Records refused at placement. */
  refuse: (r: OutputRecord) => Refusal | undefined = () => undefined;
  /** Stored offsets (offsets: 'output'). */
  stored = new Map<string, bigint>();

  constructor(readonly offsets: 'consumer' | 'output' = 'consumer') {
    if (offsets === 'output') this.committedOffsets = async (topic, partitions) => new Map(partitions.flatMap((p) => (this.stored.has(`${topic}/${p}`) ? [[p, this.stored.get(`${topic}/${p}`)!] as const] : [])));
  }
  committedOffsets?: Output['committedOffsets'];
  async connect(): Promise<void> {}
  async check(): Promise<void> {}
  async close(): Promise<void> {}
  openBatch(): MemoryBatch {
    return new MemoryBatch((r) => this.refuse(r));
  }
  async write(batch: MemoryBatch, ctx: WriteContext): Promise<PreparedWrite> {
    this.contexts.push(ctx);
    this.calls.push(`write ${ctx.topic}/${ctx.partition} ${ctx.startOffset}..${ctx.nextOffset}`);
    const hold = this.hold;
    this.hold = undefined;
    if (hold) await hold;
    if (this.failWith !== undefined) {
      const error = this.failWith;
      this.failWith = undefined;
      throw error;
    }
    const rejected: RejectedRow[] = [];
    const kept: OutputRecord[] = [];
    for (const record of batch.records) {
      const error = this.rejectRow(record);
      if (error) rejected.push({ record, reason: 'sql_rejected', error });
      else kept.push(record);
    }
    return {
      rejected,
      stats: { bytes: kept.length * 10, objects: 1 },
      commit: async () => {
        this.calls.push('commit');
        this.landed.push(...kept);
        if (this.offsets === 'output') this.stored.set(`${ctx.topic}/${ctx.partition}`, ctx.nextOffset);
      },
      abort: async () => void this.calls.push('abort'),
    };
  }
}

export function message(offset: number, value: unknown = { id: `e${offset}` }): { key: Buffer | null; value: Buffer | null; headers: Record<string, Buffer>; offset: string; timestamp: string; attributes: number; size: number } {
  return { key: null, value: Buffer.from(JSON.stringify(value)), headers: {}, offset: String(offset), timestamp: String(Date.now()), attributes: 0, size: 0 };
}

/** A rebalance error as kafkajs throws it from a heartbeat or a commit. */
export function rebalanceError(): Error {
  return Object.assign(new Error('The group is rebalancing, so a rejoin is needed'), { name: 'KafkaJSProtocolError', type: 'REBALANCE_IN_PROGRESS', retriable: false });
}

type Listener = (e: { payload: Record<string, unknown> }) => void;

/** A kafkajs consumer as the runner uses it: the test drives eachBatch and the group events. */
export class FakeConsumer {
  readonly events = { REBALANCING: 'consumer.rebalancing', GROUP_JOIN: 'consumer.group_join', CRASH: 'consumer.crash' };
  readonly commits: { topic: string; partition: number; offset: string }[] = [];
  readonly seeks: { topic: string; partition: number; offset: string }[] = [];
  readonly listeners = new Map<string, Listener[]>();
  eachBatch: ((payload: never) => Promise<void>) | undefined;
  /** The next commit throws this (then it is cleared). */
  commitFails: unknown;
  async connect(): Promise<void> {}
  async disconnect(): Promise<void> {}
  async subscribe(): Promise<void> {}
  on(event: string, fn: Listener): void {
    this.listeners.set(event, [...(this.listeners.get(event) ?? []), fn]);
  }
  emit(event: string, payload: Record<string, unknown> = {}): void {
    for (const fn of this.listeners.get(event) ?? []) fn({ payload });
  }
  async run(o: { eachBatch: (payload: never) => Promise<void> }): Promise<void> {
    this.eachBatch = o.eachBatch;
  }
  async commitOffsets(offsets: { topic: string; partition: number; offset: string }[]): Promise<void> {
    if (this.commitFails !== undefined) {
      const error = this.commitFails;
      this.commitFails = undefined;
      throw error;
    }
    this.commits.push(...offsets);
  }
  seek(o: { topic: string; partition: number; offset: string }): void {
    this.seeks.push(o);
  }
}

export class FakeProducer {
  readonly sent: { topic: string; messages: Message[] }[] = [];
  async connect(): Promise<void> {}
  async disconnect(): Promise<void> {}
  async send(o: { topic: string; messages: Message[] }): Promise<unknown[]> {
    this.sent.push({ topic: o.topic, messages: o.messages });
    return [];
  }
}

/** A fetched batch as kafkajs hands it to eachBatch, with the calls the runner makes on it. */
export function fetched(topic: string, partition: number, offsets: number[], o: { heartbeat?: () => Promise<void>; values?: (offset: number) => unknown } = {}) {
  const resolved: string[] = [];
  const messages = offsets.map((n) => message(n, o.values?.(n)));
  const payload = {
    batch: { topic, partition, highWatermark: String((offsets.at(-1) ?? 0) + 1), messages, lastOffset: () => messages.at(-1)?.offset ?? '-1' },
    heartbeat: o.heartbeat ?? (async () => undefined),
    resolveOffset: (offset: string) => void resolved.push(offset),
    isRunning: () => true,
    isStale: () => false,
  };
  return { payload: payload as never, resolved };
}

/** A JSON-in pipeline (the output block is parsed as s3; the tests hand the runner a FakeOutput). */
export function jsonPipeline(): PipelineConfig {
  const text = [
    'input:',
    '  kafka:',
    '    brokers: [localhost:9]',
    '    topics: [events]',
    '    consumer_group: unit-export',
    '    decode: json',
    '    registry: { url: "http://localhost:9/unused" }',
    'output:',
    '  s3:',
    '    bucket: unit-bucket',
    '    path: lake/${topic}+${partition}+${first_offset}.jsonl',
    '    format: jsonl',
    '    columns: [{ name: id, type: string }]',
    'dlq:',
    '  topic: unit-export.dlq',
  ].join('\n');
  const { config, problems } = lintPipelineText(text, 'unit.yaml', { env: {} });
  if (!config) throw new Error(`unit pipeline invalid: ${JSON.stringify(problems)}`);
  return config;
}
