import type { Message, TopicMessages } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { PermanentError } from '../../processors/core/errors/errors.js';
import { createLogger } from '../../processors/core/log/logger.js';
import {
  isFenced,
  isRebalancing,
  isTransient,
  messageBytes,
  ProducerFencedError,
  splitBySize,
  TransactionalLoop,
} from '../../processors/core/kafka/transactional-loop.js';
import { batchPayload, type FakeKafkaScript, fakeTransactionalKafka } from '../support/fake-transactional-kafka.js';

const logger = createLogger({ name: 'test', level: 'silent' });
const protocolError = (type: string, code = 0) => Object.assign(new Error(type), { name: 'KafkaJSProtocolError', type, code, retriable: false });

describe('transaction error classes', () => {
  it('tells a fence, a rebalance, a transient fault and a bug apart', () => {
    expect(isFenced(protocolError('INVALID_PRODUCER_EPOCH'))).toBe(true);
    expect(isFenced(Object.assign(new Error('x'), { name: 'KafkaJSProtocolError', type: 'KAFKAJS_UNKNOWN_ERROR_CODE', code: 90 }))).toBe(true);
    expect(isFenced(Object.assign(new Error('wrapped'), { name: 'KafkaJSNumberOfRetriesExceeded', cause: protocolError('INVALID_PRODUCER_EPOCH') }))).toBe(true);
    expect(isRebalancing(protocolError('REBALANCE_IN_PROGRESS'))).toBe(true);
    expect(isTransient(Object.assign(new Error('down'), { name: 'KafkaJSConnectionError' }))).toBe(true);
    expect(isTransient(Object.assign(new Error('retries'), { name: 'KafkaJSNumberOfRetriesExceeded', retriable: false }))).toBe(true);
    expect(isTransient(protocolError('INVALID_PRODUCER_EPOCH'))).toBe(false);
    expect(isTransient(protocolError('MESSAGE_TOO_LARGE'))).toBe(false);
    expect(isTransient(new TypeError('bug'))).toBe(false);
    expect(isTransient(new PermanentError('bad'))).toBe(false);
  });
});

describe('produce requests under the broker message size', () => {
  const msg = (n: number): Message => ({ key: 'k', value: Buffer.alloc(n) });
  it('splits by bytes, keeps order and topics, and sends an oversized message alone', () => {
    const input: TopicMessages[] = [
      { topic: 'a', messages: [msg(400), msg(400), msg(400)] },
      { topic: 'b', messages: [msg(2000), msg(10)] },
    ];
    const parts = splitBySize(input, 1000);
    expect(parts.map((p) => p.map((t) => `${t.topic}:${t.messages.length}`))).toEqual([['a:2'], ['a:1'], ['b:1'], ['b:1']]);
    expect(parts.flat().flatMap((t) => t.messages)).toEqual([...input[0]!.messages, ...input[1]!.messages]);
    expect(splitBySize([], 1000)).toEqual([]);
  });
  it('counts headers', () => {
    expect(messageBytes({ key: 'k', value: 'v', headers: { 'sluice.dlq.reason': 'currency_mismatch' } })).toBeGreaterThan(messageBytes({ key: 'k', value: 'v' }));
  });
});

/** The loop over a kafkajs stand-in that records what it does, with scripted failures. */
function harness(script: FakeKafkaScript & { committedOffset?: string } = {}) {
  const fake = fakeTransactionalKafka(script);
  const committed: unknown[] = [];
  const loop = new TransactionalLoop<number>({
    kafka: fake.kafka,
    admin: { fetchOffsets: async () => [{ topic: 'cdc', partitions: [{ partition: 0, offset: script.committedOffset ?? '-1' }] }] } as never,
    groupId: 'g',
    transactionalId: 't',
    inputTopic: 'cdc',
    maxBatchRecords: 2,
    maxBytesPerPartition: 1 << 20,
    sessionTimeoutMs: 30_000,
    transactionTimeoutMs: 60_000,
    logger,
    signal: new AbortController().signal,
    route: async (records) => ({ topicMessages: [{ topic: 'events', messages: records.map((r) => ({ key: 'a', value: r.message.value })) }], result: records.length }),
    onCommitted: (n) => void committed.push(n),
    retry: { initialMs: 1, maxMs: 1 },
  });
  const resolved: string[] = [];
  return { loop, log: fake.log, committed, resolved, run: async (offsets: number[]) => fake.eachBatch(batchPayload({ topic: 'cdc', partition: 0, offsets, resolved })) };
}

describe('the transactional loop', () => {
  it('writes each chunk with its offsets in one transaction, after initialising the transactional id at start', async () => {
    const h = harness();
    await h.loop.start();
    expect(h.log).toEqual(['p1.connect']); // InitProducerId went with the empty transaction begun and aborted
    await h.run([10, 11, 12]);
    expect(h.log.slice(1)).toEqual(['p1.send events:2', 'p1.offsets cdc[0]=12', 'p1.commit', 'p1.send events:1', 'p1.offsets cdc[0]=13', 'p1.commit']);
    expect(h.resolved).toEqual(['11', '12']);
    expect(h.committed).toEqual([2, 1]);
  });

  it('aborts and retries a chunk whose send failed on a transient fault', async () => {
    const h = harness({ failSend: [Object.assign(new Error('broker away'), { name: 'KafkaJSConnectionError' })] });
    await h.loop.start();
    await h.run([0, 1]);
    expect(h.log.slice(1)).toEqual(['p1.abort', 'p1.send events:2', 'p1.offsets cdc[0]=2', 'p1.commit']);
    expect(h.committed).toEqual([2]);
  });

  it('re-initialises the producer after a commit of unknown outcome, and does not write the chunk again when it had committed', async () => {
    const h = harness({ failCommit: [Object.assign(new Error('timeout'), { name: 'KafkaJSRequestTimeoutError' })], committedOffset: '2' });
    await h.loop.start();
    await h.run([0, 1]);
    expect(h.log.slice(1)).toEqual(['p1.send events:2', 'p1.offsets cdc[0]=2', 'p1.commit failed', 'p1.disconnect', 'p2.connect']);
    expect(h.committed).toEqual([2]);
    expect(h.resolved).toEqual(['1']);
  });

  it('writes the chunk again after a reset when it had not committed', async () => {
    const h = harness({ failCommit: [Object.assign(new Error('timeout'), { name: 'KafkaJSRequestTimeoutError' })], committedOffset: '0' });
    await h.loop.start();
    await h.run([0, 1]);
    expect(h.log.slice(1)).toEqual(['p1.send events:2', 'p1.offsets cdc[0]=2', 'p1.commit failed', 'p1.disconnect', 'p2.connect', 'p2.send events:2', 'p2.offsets cdc[0]=2', 'p2.commit']);
  });

  it('skips records below its own last commit when a batch restarts there (offsets refetched before the markers landed)', async () => {
    const h = harness();
    await h.loop.start();
    await h.run([0, 1]);
    await h.run([0, 1, 2]);
    expect(h.log.filter((l) => l.includes('send'))).toEqual(['p1.send events:2', 'p1.send events:1']);
  });

  it('stops when fenced, without retrying', async () => {
    const h = harness({ failSend: [protocolError('INVALID_PRODUCER_EPOCH')] });
    await h.loop.start();
    await expect(h.run([0])).rejects.toBeInstanceOf(ProducerFencedError);
    expect(h.committed).toEqual([]);
  });
});
