import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { ExportMetrics } from '../../processors/export/metrics.js';
import type { KafkaInput } from '../../processors/export/inputs/kafka.js';
import { MAX_SEALED, PipelineRunner } from '../../processors/export/runner.js';
import type { RegistryRestClient } from '../../processors/core/registry/ccompat.js';
import { deferred, fetched, FakeConsumer, FakeOutput, FakeProducer, jsonPipeline, rebalanceError } from '../support/export-fakes.js';

/**
 * The runner's orchestration around kafkajs, with a fake consumer group (as kafkajs tests
 * its own runner): the test calls eachBatch and emits the group's events, the fake output
 * holds or fails writes, and what gets committed, sought and written is checked.
 */

const runners: PipelineRunner[] = [];

async function start(output: FakeOutput) {
  const consumer = new FakeConsumer();
  const producer = new FakeProducer();
  const kafka = { consumer: () => consumer, producer: () => producer, admin: () => ({}) } as never;
  const pipeline = jsonPipeline();
  const runner = new PipelineRunner(pipeline, { kafka, registry: {} as RegistryRestClient, logger: pino({ level: 'silent' }), metrics: new ExportMetrics(new Registry()), output });
  runners.push(runner);
  await runner.run();
  const eachBatch = (p: never) => consumer.eachBatch!(p);
  return { runner, consumer, producer, eachBatch, dlq: pipeline.dlq.topic };
}

async function until(what: string, check: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

afterEach(async () => {
  for (const r of runners.splice(0)) await r.stop();
});

describe('export runner, with a fake consumer group', () => {
  it('flushes a full batch in the background and commits its next offset; records the output refuses go to the DLQ', async () => {
    const output = new FakeOutput(); // batching.count 2
    output.refuse = (r) => (r.offset === '2' ? { reason: 'schema_mismatch', error: 'id: not a string' } : undefined);
    const { runner, consumer, producer, eachBatch, dlq } = await start(output);
    const { payload, resolved } = fetched('events', 0, [0, 1, 2, 3]);
    await eachBatch(payload);
    await until('the first commit', () => consumer.commits.length === 1);
    expect(resolved.at(-1)).toBe('3');
    expect(producer.sent).toEqual([]); // the open batch's dead letter waits for its flush
    runners.splice(runners.indexOf(runner), 1);
    await runner.stop(); // flushes the open batch (2 refused, 3 placed)
    expect(consumer.commits.map((c) => c.offset)).toEqual(['2', '4']);
    expect(output.landed.map((r) => r.offset)).toEqual(['0', '1', '3']);
    expect(producer.sent).toHaveLength(1);
    expect(producer.sent[0]!.topic).toBe(dlq);
    expect(producer.sent[0]!.messages[0]!.headers).toMatchObject({ 'sluice.dlq.reason': 'schema_mismatch', 'sluice.dlq.offset': '2' });
  });

  it('overlaps flushes with record work: up to MAX_SEALED sealed batches a partition queue while the next fills, written and committed in offset order', async () => {
    expect(MAX_SEALED).toBe(2);
    const output = new FakeOutput(); // batching.count 2
    const hold = deferred();
    output.hold = hold.promise; // the first write (events/0 0..2) hangs
    const { consumer, eachBatch } = await start(output);
    // Two full batches of partition 0: the first is writing (held), the second sealed behind it; eachBatch returns at once.
    await eachBatch(fetched('events', 0, [0, 1, 2, 3]).payload);
    await until('the held write', () => output.contexts.length === 1);
    expect(output.calls).toEqual(['write events/0 0..2']); // the second batch does not write before the first commits
    // Another partition's records and flushes go on meanwhile.
    await eachBatch(fetched('events', 1, [0, 1]).payload);
    await until("partition 1's commit", () => consumer.commits.some((c) => c.partition === 1));
    // A third full batch of partition 0 would be a third in flight: eachBatch waits (backpressure) for the first to commit.
    let third = false;
    const waiting = eachBatch(fetched('events', 0, [4, 5]).payload).then(() => (third = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(third).toBe(false);
    hold.resolve();
    await waiting;
    await until('every batch of partition 0 committed', () => consumer.commits.filter((c) => c.partition === 0).length === 3);
    expect(consumer.commits.filter((c) => c.partition === 0).map((c) => c.offset)).toEqual(['2', '4', '6']);
    expect(output.calls.filter((c) => c.includes('events/0'))).toEqual(['write events/0 0..2', 'write events/0 2..4', 'write events/0 4..6']);
    expect(output.landed.filter((r) => r.partition === 0).map((r) => r.offset)).toEqual(['0', '1', '2', '3', '4', '5']);
  });

  it('a failed flush voids the batch sealed behind it: nothing after it is written or committed, and the partition is read again from the failed batch', async () => {
    const output = new FakeOutput();
    const hold = deferred();
    output.hold = hold.promise;
    output.failWith = new Error('warehouse refused: permission denied');
    const { consumer, eachBatch } = await start(output);
    await eachBatch(fetched('events', 2, [10, 11, 12, 13]).payload); // 10..12 writing (held, then fails), 12..14 sealed behind it
    await until('the held write', () => output.contexts.length === 1);
    hold.resolve();
    await until('the seek', () => consumer.seeks.length === 1);
    await new Promise((r) => setTimeout(r, 20));
    expect(consumer.seeks[0]).toEqual({ topic: 'events', partition: 2, offset: '10' });
    expect(output.calls).toEqual(['write events/2 10..12']);
    expect(consumer.commits).toEqual([]);
    // The replay writes both batches, in order.
    await eachBatch(fetched('events', 2, [10, 11, 12, 13]).payload);
    await until('both commits', () => consumer.commits.length === 2);
    expect(consumer.commits.map((c) => c.offset)).toEqual(['12', '14']);
  });

  it('abandons a flush the group rebalances under: nothing committed, the write cut, and the partition read again after the rejoin', async () => {
    const output = new FakeOutput();
    const hold = deferred();
    output.hold = hold.promise;
    const { consumer, eachBatch } = await start(output);
    await eachBatch(fetched('events', 1, [5, 6]).payload); // full: its flush starts and is held in write
    await until('the write', () => output.contexts.length === 1);
    const cut = output.contexts[0]!.signal;
    consumer.emit(consumer.events.REBALANCING);
    expect(cut.aborted).toBe(true);
    hold.resolve();
    await new Promise((r) => setTimeout(r, 50));
    expect(consumer.commits).toEqual([]);
    expect(output.calls).toEqual(['write events/1 5..7', 'abort']);
    // After the rejoin kafkajs fetches from the committed offset again: the batch is written and committed anew.
    consumer.emit(consumer.events.GROUP_JOIN, { memberAssignment: { events: [1] } });
    await eachBatch(fetched('events', 1, [5, 6]).payload);
    await until('the commit', () => consumer.commits.length === 1, 5000); // the new owner's guard waits 2 s
    expect(consumer.commits[0]).toEqual({ topic: 'events', partition: 1, offset: '7' });
    expect(output.landed.map((r) => r.offset)).toEqual(['5', '6']);
  });

  it('stops consuming a partition whose flush a heartbeat found rebalancing, until the group rejoins', async () => {
    const output = new FakeOutput();
    output.failWith = rebalanceError(); // the write learns from a heartbeat that the generation is over
    const { consumer, eachBatch } = await start(output);
    await eachBatch(fetched('events', 0, [0, 1]).payload);
    await until('the abandoned write', () => output.calls.includes('write events/0 0..2'));
    await new Promise((r) => setTimeout(r, 20));
    // kafkajs may hand in the next fetch before it notices the rebalance: it must not be consumed (its position is past the lost batch).
    await eachBatch(fetched('events', 0, [2, 3]).payload);
    expect(output.contexts).toHaveLength(1);
    expect(consumer.commits).toEqual([]);
    expect(consumer.seeks).toEqual([]);
    // The rejoin lifts it: kafkajs fetches from the committed offset.
    consumer.emit(consumer.events.GROUP_JOIN, { memberAssignment: { events: [0] } });
    await eachBatch(fetched('events', 0, [0, 1]).payload);
    await until('the new write', () => output.contexts.length === 2, 5000); // after the new owner's 2 s guard
    await until('its commit', () => consumer.commits.length === 1);
  });

  it('seeks back to the first offset of a batch whose write failed, and commits nothing', async () => {
    const output = new FakeOutput();
    output.failWith = new Error('S3 refused: AccessDenied');
    const { consumer, eachBatch } = await start(output);
    await eachBatch(fetched('events', 3, [40, 41]).payload);
    await until('the seek', () => consumer.seeks.length === 1);
    expect(consumer.seeks[0]).toEqual({ topic: 'events', partition: 3, offset: '40' });
    expect(consumer.commits).toEqual([]);
    // The replayed fetch is a fresh batch that starts where the failed one did.
    await eachBatch(fetched('events', 3, [40, 41]).payload);
    await until('the commit', () => consumer.commits.length === 1);
    expect(output.calls.filter((c) => c.startsWith('write'))).toEqual(['write events/3 40..42', 'write events/3 40..42']);
  });

  it('with an output that stores offsets: seeks to the stored offset on assignment, and fences each write on it', async () => {
    const output = new FakeOutput('output');
    output.stored.set('events/0', 5n); // the target holds 0..4 already; the group's offset lags behind it
    const { consumer, eachBatch } = await start(output);
    await eachBatch(fetched('events', 0, [3, 4, 5, 6]).payload);
    expect(consumer.seeks).toEqual([{ topic: 'events', partition: 0, offset: '5' }]);
    expect(output.contexts).toEqual([]);
    await eachBatch(fetched('events', 0, [5, 6]).payload);
    await until('the write', () => output.calls.includes('commit'));
    expect(output.contexts[0]).toMatchObject({ startOffset: '5', committedOffset: 5n, nextOffset: 7n });
    expect(output.stored.get('events/0')).toBe(7n);
    // The group's offset follows, for lag only.
    await until('the group commit', () => consumer.commits.length === 1);
    expect(consumer.commits[0]!.offset).toBe('7');
    // After a rebalance the stored offset is read again.
    output.stored.set('events/0', 9n); // another member wrote 7..8 meanwhile
    consumer.emit(consumer.events.REBALANCING);
    consumer.emit(consumer.events.GROUP_JOIN, { memberAssignment: { events: [0] } });
    await eachBatch(fetched('events', 0, [7, 8]).payload);
    expect(consumer.seeks.at(-1)).toEqual({ topic: 'events', partition: 0, offset: '9' });
  });

  it('stops promptly while the consumer is re-joining its group (kafkajs finishes a JoinGroup before it can leave): flushed first, then stops without leaving', async () => {
    const output = new FakeOutput();
    const { runner, consumer, eachBatch } = await start(output);
    await eachBatch(fetched('events', 4, [3]).payload); // one record: not full
    const joining = deferred();
    consumer.disconnect = () => joining.promise; // the group waits for other members: the rejoin (and so the leave) hangs
    (runner.input as KafkaInput).leaveTimeoutMs = 100;
    runners.splice(runners.indexOf(runner), 1);
    const started = Date.now();
    await runner.stop();
    expect(Date.now() - started).toBeLessThan(2000);
    expect(consumer.commits).toEqual([{ topic: 'events', partition: 4, offset: '4' }]); // the open batch was flushed before
    joining.reject(new Error('join ended after the stop')); // a late failure is logged, never an unhandled rejection
    await new Promise((r) => setTimeout(r, 10));
  });

  it('stops within its flush budget when a write hangs: the write is cut, nothing committed, the partitions flushed at once, then the group left', async () => {
    const output = new FakeOutput();
    const hang = deferred();
    output.hold = hang.promise;
    const { runner, consumer, eachBatch } = await start(output);
    await eachBatch(fetched('events', 1, [5, 6]).payload); // full: its flush starts and hangs in write
    await eachBatch(fetched('events', 3, [9]).payload); // open: flushed at the stop, beside the hung one
    await until('the write', () => output.contexts.length === 1);
    output.contexts[0]!.signal.addEventListener('abort', () => hang.resolve()); // a real write ends when cut
    let left = false;
    consumer.disconnect = async () => void (left = true);
    runner.stopFlushMs = 300;
    runners.splice(runners.indexOf(runner), 1);
    const started = Date.now();
    await runner.stop();
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(2000);
    expect(left).toBe(true);
    // Partition 3's open batch was flushed while partition 1's write hung; partition 1's was cut and is read again.
    expect(consumer.commits).toEqual([{ topic: 'events', partition: 3, offset: '10' }]);
    expect(output.calls).toContain('abort');
    expect(output.landed.map((r) => r.offset)).toEqual(['9']);
  });

  it('flushes what is open on SIGTERM', async () => {
    const output = new FakeOutput();
    const { runner, consumer, eachBatch } = await start(output);
    await eachBatch(fetched('events', 2, [7]).payload); // one record: not full
    expect(consumer.commits).toEqual([]);
    runners.splice(runners.indexOf(runner), 1);
    await runner.stop();
    expect(consumer.commits).toEqual([{ topic: 'events', partition: 2, offset: '8' }]);
  });
});
