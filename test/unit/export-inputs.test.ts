import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { lintPipelineText } from '../../processors/core/pipeline/lint.js';
import { parseOverride } from '../../processors/core/pipeline/overrides.js';
import type { PipelineConfig } from '../../processors/core/pipeline/pipeline.js';
import { deadLetterMessage } from '../../processors/core/dlq/dead-letter.js';
import { deadLetterJson, StreamDeadLetters } from '../../processors/export/dead-letters.js';
import type { InputBatch, InputHandler } from '../../processors/export/inputs/input.js';
import { LocalDelivery, type ConsumedRecordInput, type RecordSource } from '../../processors/export/inputs/local-delivery.js';
import { StdinInput } from '../../processors/export/inputs/stdin.js';
import { ExportMetrics } from '../../processors/export/metrics.js';
import { FileOutput, writeAtomically } from '../../processors/export/outputs/file.js';
import { StdoutOutput } from '../../processors/export/outputs/stdout.js';
import type { OutputRecord, WriteContext } from '../../processors/export/outputs/output.js';

/**
 * The try-it inputs and outputs' logic with no server: delivery held until committed and
 * delivered again after a seek (inputs without offsets), `--set` overrides, the stdout
 * batch's lines and keys, the file output's atomic writes and its directory guard, dead
 * letters as JSON lines.
 */

const silent = pino({ level: 'silent' });

class ListSource implements RecordSource {
  constructor(private values: string[]) {}
  async next(max: number): Promise<ConsumedRecordInput[]> {
    return this.values.splice(0, max).map((v) => ({ value: Buffer.from(v) }));
  }
  close(): void {}
}

/** A handler that records runs; `hold` makes it keep what it got (no commit) until told. */
function recorder() {
  const runs: string[][] = [];
  let drained = 0;
  const handler: InputHandler = {
    batch: async (b: InputBatch) => void runs.push(b.messages.map((m) => `${m.offset}:${m.value}`)),
    rebalancing: () => undefined,
    joined: () => undefined,
    crashed: () => undefined,
    drained: () => void drained++,
  };
  return { runs, handler, drained: () => drained };
}

const tick = () => new Promise((r) => setTimeout(r, 20));

describe('LocalDelivery (inputs without offsets)', () => {
  it('delivers records in runs with increasing offsets, says drained at the end, and ends once everything is committed', async () => {
    const d = new LocalDelivery(new ListSource(['a', 'b', 'c']), { topic: 't', chunk: 2, logger: silent });
    const r = recorder();
    d.start(r.handler);
    await tick();
    expect(r.runs).toEqual([['0:a', '1:b'], ['2:c']]);
    expect(r.drained()).toBe(1);
    expect(d.holding).toBe(3);
    let ended = false;
    void d.ended.then(() => (ended = true));
    d.commit(2n);
    await tick();
    expect(ended).toBe(false);
    expect(d.holding).toBe(1);
    d.commit(3n);
    await tick();
    expect(ended).toBe(true);
  });

  it('delivers the held records again after a seek (a failed flush), from the seek offset, and drains again', async () => {
    const d = new LocalDelivery(new ListSource(['a', 'b', 'c']), { topic: 't', chunk: 10, retryDelayMs: 1, logger: silent });
    const r = recorder();
    d.start(r.handler);
    await tick();
    d.commit(1n); // 'a' is durable
    d.seek('1'); // the flush of b, c failed
    await tick();
    expect(r.runs).toEqual([['0:a', '1:b', '2:c'], ['1:b', '2:c']]);
    expect(r.drained()).toBe(2);
    d.commit(3n);
    await d.ended;
  });

  it('gives up after 5 failed flushes in a row at the same offset: ended rejects naming the offset', async () => {
    const d = new LocalDelivery(new ListSource(['a']), { topic: 't', retryDelayMs: 1, logger: silent });
    const r = recorder();
    d.start(r.handler);
    await tick();
    for (let i = 0; i < 5; i++) {
      d.seek('0');
      await tick();
    }
    await expect(d.ended).rejects.toThrow(/records from offset 0 of t failed to flush 5 times in a row/);
    expect(r.runs.length).toBe(5); // the first delivery and 4 retries
  });
});

describe('stdin input', () => {
  it('reads non-empty lines as records at offset = line number - 1 and ends at EOF', async () => {
    const stdin = new PassThrough();
    const input = new StdinInput({ decode: 'json' }, { pipeline: {} as PipelineConfig, logger: silent, metrics: new ExportMetrics(new Registry()), stdin });
    const r = recorder();
    await input.run(r.handler);
    stdin.end('{"a":1}\n\n{"a":2}\n');
    await tick();
    expect(r.runs.flat()).toEqual(['0:{"a":1}', '2:{"a":2}']);
    await input.commit('stdin', 0, 3n);
    await input.ended;
  });
});

const BASE = ['input:', '  kafka:', '    brokers: [localhost:9092]', '    topics: [events]', '    consumer_group: g', '    registry: { url: "http://localhost:8081" }', 'output:', '  s3:', '    bucket: lake', '    path: e/${topic}+${partition}+${first_offset}.jsonl', '    format: jsonl', 'dlq:', '  topic: events.dlq'].join('\n');

describe('--set overrides', () => {
  it('a bare component name replaces the block with its defaults; dotted paths set nested values', () => {
    const overrides = ['input=stdin', 'input.stdin.decode=raw', 'output=stdout', 'output.stdout.batching.count=5'].map(parseOverride);
    const { config, problems } = lintPipelineText(BASE, 'p.yaml', { env: {}, overrides });
    expect(problems).toEqual([]);
    expect(config!.input).toMatchObject({ type: 'stdin', config: { decode: 'raw' } });
    expect(config!.output.type as string).toBe('stdout');
    expect((config!.output.config as unknown as { batching: { count: number } }).batching.count).toBe(5);
  });

  it('a value that does not fit is reported at the key it replaced, naming --set', () => {
    const { problems } = lintPipelineText(BASE, 'p.yaml', { env: {}, overrides: [parseOverride('input.kafka.start_from=middle')] });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ path: 'input.kafka.start_from' });
    expect(problems[0]!.message).toContain('(from --set input.kafka.start_from=middle)');
  });

  it('refuses an argument without path=value', () => {
    expect(() => parseOverride('input')).toThrow(/write path=value/);
  });
});

function record(offset: number, value: unknown): OutputRecord {
  return { value, topic: 't', partition: 0, offset: String(offset), message: { key: null, value: null, headers: {}, offset: String(offset), timestamp: '0' } };
}

const writeCtx = { owned: () => true } as unknown as WriteContext;

describe('stdout output', () => {
  it('writes the records as JSON lines, bigints exact', async () => {
    const out = new PassThrough();
    const stdout = new StdoutOutput({ path: undefined, time_field: undefined, time_format: 'unix_us', batching: { count: 10, bytes: 1000, period: 100 } }, out);
    const batch = stdout.openBatch('t', 0);
    batch.add(record(7, { id: 'a', amount: 9007199254740993n }));
    await stdout.write(batch, writeCtx);
    expect(out.read().toString()).toBe('{"id":"a","amount":9007199254740993}\n');
  });

  it('with a path: each line holds the key its file would get (the first offset of its group) and the row; an unrenderable path is a path_error', async () => {
    const { config } = lintPipelineText(BASE.replace(/output:[\s\S]*dlq:/, "output:\n  stdout:\n    path: e/type=${data.type}/${topic}+${partition}+${first_offset}.jsonl\ndlq:"), 'p.yaml', { env: {} });
    const out = new PassThrough();
    const stdout = new StdoutOutput(config!.output.config as never, out);
    const batch = stdout.openBatch('t', 3);
    batch.add(record(10, { type: 'x' }));
    batch.add(record(11, { type: 'y' }));
    batch.add(record(12, { type: 'x' }));
    expect(batch.add(record(13, { type: { nested: 1 } }))).toMatchObject({ reason: 'path_error' });
    await stdout.write(batch, writeCtx);
    expect((out.read() as Buffer).toString().trim().split('\n').map((l: string) => JSON.parse(l) as unknown)).toEqual([
      { key: 'e/type=x/t+3+10.jsonl', row: { type: 'x' } },
      { key: 'e/type=y/t+3+11.jsonl', row: { type: 'y' } },
      { key: 'e/type=x/t+3+10.jsonl', row: { type: 'x' } },
    ]);
  });
});

describe('file output', () => {
  const fileYaml = (dir: string, path: string) => BASE.replace(/output:[\s\S]*dlq:/, `output:\n  file:\n    directory: ${dir}\n    path: ${path}\n    format: jsonl\n    columns: [{ name: id, type: string }, { name: kind, type: string }]\ndlq:`);

  it('writes each file atomically under the directory (no temporary file left), replacing a replayed one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-file-out-'));
    const { config, problems } = lintPipelineText(fileYaml(dir, 'k=${data.kind}/${topic}+${partition}+${first_offset}.jsonl'), 'p.yaml', { env: {} });
    expect(problems).toEqual([]);
    const output = new FileOutput(config!.output.config as never, { pipeline: config!, logger: silent, metrics: new ExportMetrics(new Registry()) });
    await output.connect();
    for (let round = 0; round < 2; round++) {
      const batch = output.openBatch('t', 0);
      batch.add(record(5, { id: `a${round}`, kind: 'x' }));
      await output.write(batch, writeCtx);
    }
    expect(readdirSync(join(dir, 'k=x'))).toEqual(['t+0+5.jsonl']);
    expect(readFileSync(join(dir, 'k=x/t+0+5.jsonl'), 'utf8')).toBe('{"id":"a1","kind":"x"}\n');
  });

  it('refuses a rendered path that leaves the directory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-file-out-'));
    const { config } = lintPipelineText(fileYaml(dir, '${data.kind}/${topic}+${partition}+${first_offset}.jsonl'), 'p.yaml', { env: {} });
    const output = new FileOutput(config!.output.config as never, { pipeline: config!, logger: silent, metrics: new ExportMetrics(new Registry()) });
    const batch = output.openBatch('t', 0);
    batch.add(record(1, { id: 'a', kind: '..' }));
    await expect(output.write(batch, writeCtx)).rejects.toThrow(/leaves the output directory/);
  });

  it('writeAtomically creates the folders and leaves only the final file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-atomic-'));
    await writeAtomically(join(dir, 'a/b/c.bin'), new Uint8Array([1, 2, 3]));
    expect(readdirSync(join(dir, 'a/b'))).toEqual(['c.bin']);
    expect([...readFileSync(join(dir, 'a/b/c.bin'))]).toEqual([1, 2, 3]);
  });
});

describe('dead letters without a broker', () => {
  it('are JSON lines on the stream: the reason, where the record came from, and its value as text', async () => {
    const letter = deadLetterMessage({ topic: 'stdin', partition: 0, message: { key: null, value: Buffer.from('not json'), headers: {}, offset: '4', timestamp: '1' } }, { reason: 'decode_error', error: 'value is not JSON' }, 'lake/input', 2);
    const stream = new PassThrough();
    await new StreamDeadLetters(stream).send([letter]);
    expect(JSON.parse(stream.read().toString())).toEqual({
      dead_letter: { reason: 'decode_error', error: 'value is not JSON', topic: 'stdin', partition: 0, offset: '4', timestamp: '1', failedAt: '2', processor: 'lake/input' },
      key: null,
      value: 'not json',
    });
    expect(deadLetterJson({ key: null, value: Buffer.from([0xff, 0x00]), headers: {} })).toMatchObject({ value_base64: '/wA=' });
  });
});
