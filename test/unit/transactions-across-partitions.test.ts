import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TransactionalLoop } from '../../processors/core/kafka/transactional-loop.js';
import { createLogger } from '../../processors/core/log/logger.js';
import { StateStores } from '../../processors/core/state/state-stores.js';
import { FakeChangelog } from '../support/fake-changelog.js';
import { batchPayload, type FakeKafkaScript, fakeTransactionalKafka } from '../support/fake-transactional-kafka.js';

/**
 * The transactional loop with several partitions a transaction (`partitionsPerTransaction`,
 * what `sluice live` runs): kafkajs hands the batches of one fetch over at once; they are
 * routed, each against its partition's state, and written in one Kafka transaction with
 * every partition's offsets. A kafkajs stand-in records the requests; the state is the real
 * StateStores over LMDB with an in-memory changelog.
 */
const logger = createLogger({ name: 'test', level: 'silent' });
const transient = () => Object.assign(new Error('broker away'), { name: 'KafkaJSConnectionError' });
const rebalancing = () => Object.assign(new Error('rebalance'), { name: 'KafkaJSProtocolError', type: 'REBALANCE_IN_PROGRESS', code: 27, retriable: false });

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-txn-test-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function harness(script: FakeKafkaScript & { pipeline?: boolean; logger?: typeof logger } = {}) {
  const changelog = new FakeChangelog();
  const state = new StateStores({ name: 'count', dir, changelogTopic: 'g-count-changelog', source: changelog, logger, now: () => 0 });
  // The changelog records reach the changelog only when the transaction commits.
  const fake = fakeTransactionalKafka(script, (sent) => {
    for (const t of sent) if (t.topic === 'g-count-changelog') for (const m of t.messages) changelog.commit(m.partition!, [m]);
  });
  const log = fake.log;
  const committed: number[] = [];
  const loop = new TransactionalLoop<number>({
    kafka: fake.kafka,
    admin: { fetchOffsets: async () => [] } as never,
    groupId: 'g',
    transactionalId: 't',
    inputTopic: 'in',
    maxBatchRecords: 100,
    partitionsPerTransaction: 6,
    pipeline: script.pipeline ?? false,
    maxBytesPerPartition: 1 << 20,
    sessionTimeoutMs: 30_000,
    transactionTimeoutMs: 60_000,
    logger: script.logger ?? logger,
    signal: new AbortController().signal,
    state,
    // Counts each record's key in the partition's state: a count of 2 for a key sent once would be a double count.
    route: async (records, txn) => {
      for (const r of records) {
        const key = r.message.key!.toString();
        const n = Number(txn!.get(key)?.value.toString() ?? '0');
        txn!.put(key, Buffer.from(String(n + 1)), 9_000);
      }
      return { topicMessages: [{ topic: 'out', messages: records.map((r) => ({ key: r.message.key, value: r.message.value })) }], result: records.length };
    },
    onCommitted: (n) => void committed.push(n),
    retry: { initialMs: 1, maxMs: 1 },
  });
  await loop.start();
  await state.assigned([]);
  for (const p of [0, 1, 2]) await state.ready(p);
  /** One fetch's batches, handed over at once as kafkajs' workers do. */
  const fetch = (batches: [number, number[]][]) => Promise.allSettled(batches.map(([partition, offsets]) => fake.eachBatch(batchPayload({ topic: 'in', partition, offsets, key: (o) => Buffer.from(`p${partition}-k${o}`) }))));
  const count = (partition: number, key: string) => {
    const v = state.begin(partition).get(key)?.value;
    return v === undefined ? 0 : Number(v.toString());
  };
  return { log, committed, fetch, count, state, changelog, loop, runOptions: fake.runOptions, join: fake.join };
}

describe('transactions across partitions', () => {
  it('writes one fetch of three partitions in one transaction: outputs, state changes and every offset', async () => {
    const h = await harness();
    const results = await h.fetch([
      [0, [10, 11]],
      [1, [5]],
      [2, [7, 8, 9]],
    ]);
    expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
    expect(h.runOptions()?.partitionsConsumedConcurrently).toBe(6);
    expect(h.log).toEqual(['p1.connect', 'p1.send out:6,g-count-changelog:6', 'p1.offsets in[0]=12,in[1]=6,in[2]=10', 'p1.commit']);
    expect(h.committed.sort()).toEqual([1, 2, 3]);
    expect([h.count(0, 'p0-k10'), h.count(1, 'p1-k5'), h.count(2, 'p2-k9')]).toEqual([1, 1, 1]);
    await h.state.close();
  });

  it('warns when assigned more partitions than it takes in one transaction (the input topic grew after the start), not otherwise', async () => {
    const warnings: string[] = [];
    const recording = Object.assign(Object.create(logger) as typeof logger, { warn: (_o: unknown, message: string) => void warnings.push(message) });
    const h = await harness({ logger: recording });
    expect(h.runOptions()?.partitionsConsumedConcurrently).toBe(6);
    h.join({ in: [0, 1, 2, 3, 4, 5], other: [0, 1, 2, 3, 4, 5, 6, 7] });
    expect(warnings).toEqual([]);
    h.join({ in: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12] });
    expect(warnings).toEqual([
      'assigned 13 partitions of in, more than the 6 it had at start-up: a fetch of all of them takes 3 transactions (still exactly once); restart the processor to take them in one',
    ]);
    await h.state.close();
  });

  it('rolls the state back when the transaction aborts: a retry counts each record once, and the next fetch sees only committed state', async () => {
    const h = await harness({ failSend: [transient()] });
    await h.fetch([
      [0, [0, 1]],
      [1, [0]],
    ]);
    // The first attempt was aborted; the retry wrote the same records once.
    expect(h.log.slice(1)).toEqual(['p1.abort', 'p1.send out:3,g-count-changelog:3', 'p1.offsets in[0]=2,in[1]=1', 'p1.commit']);
    expect([h.count(0, 'p0-k0'), h.count(0, 'p0-k1'), h.count(1, 'p1-k0')]).toEqual([1, 1, 1]);
    await h.state.flushed();
    expect([h.count(0, 'p0-k0'), h.count(1, 'p1-k0')]).toEqual([1, 1]);
    await h.state.close();
  });

  it('leaves no trace of a transaction given up on a rebalance: neither in the local store nor in the changelog, and a redelivery counts once', async () => {
    const h = await harness({ failSend: [rebalancing()] });
    const first = await h.fetch([
      [0, [0, 1]],
      [1, [0]],
    ]);
    // Both partitions' batches fail (kafkajs rejoins and refetches the committed offsets).
    expect(first.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(h.log.slice(1)).toEqual(['p1.abort']);
    await h.state.flushed();
    expect([h.count(0, 'p0-k0'), h.count(1, 'p1-k0')]).toEqual([0, 0]);
    expect(h.changelog.partitions.get(0)?.records ?? []).toEqual([]);
    // The same records again (from the committed offsets): counted once.
    const second = await h.fetch([
      [0, [0, 1]],
      [1, [0]],
    ]);
    expect(second.every((r) => r.status === 'fulfilled')).toBe(true);
    expect([h.count(0, 'p0-k0'), h.count(0, 'p0-k1'), h.count(1, 'p1-k0')]).toEqual([1, 1, 1]);
    await h.state.close();
  });

  it('writes a partition whose batch arrives while a transaction commits in the next transaction, not in the one under way', async () => {
    const h = await harness();
    const firstFetch = h.fetch([[0, [0]]]);
    const late = h.fetch([[1, [0, 1]]]);
    await Promise.all([firstFetch, late]);
    const commits = h.log.filter((l) => l === 'p1.commit').length;
    expect(commits).toBeGreaterThanOrEqual(1);
    expect(h.log.filter((l) => l.startsWith('p1.offsets')).join(' ')).toContain('in[0]=1');
    expect(h.log.filter((l) => l.startsWith('p1.offsets')).join(' ')).toContain('in[1]=2');
    expect([h.count(0, 'p0-k0'), h.count(1, 'p1-k0'), h.count(1, 'p1-k1')]).toEqual([1, 1, 1]);
    await h.state.close();
  });

  it('pipelined: routes the next fetch while the transaction before it commits, on the state that transaction wrote', async () => {
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const h = await harness({ pipeline: true, commitGates: [gate] });
    // The first fetch hands back as soon as its transaction is under way (its commit is held).
    await h.fetch([[0, [0]]]);
    expect(h.log.slice(1)).toEqual(['p1.send out:1,g-count-changelog:1', 'p1.offsets in[0]=1']);
    // The same key again in the next fetch: routed now, and it sees the uncommitted count of 1.
    const second = h.fetch([[0, [1]]].map(([p, o]) => [p as number, o as number[]]));
    await new Promise((r) => setTimeout(r, 20));
    expect(h.log.filter((l) => l === 'p1.commit')).toEqual([]);
    open();
    await second;
    await h.loop.stop();
    expect(h.log.slice(1)).toEqual(['p1.send out:1,g-count-changelog:1', 'p1.offsets in[0]=1', 'p1.commit', 'p1.send out:1,g-count-changelog:1', 'p1.offsets in[0]=2', 'p1.commit', 'p1.disconnect']);
    expect([h.count(0, 'p0-k0'), h.count(0, 'p0-k1')]).toEqual([1, 1]);
    await h.state.close();
  });

  it('pipelined: a transaction given up drops its state and the state routed after it, and its partitions are read again from its first offsets', async () => {
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const h = await harness({ pipeline: true, commitGates: [gate], failCommit: [rebalancing()] });
    await h.fetch([
      [0, [5]],
      [1, [3]],
    ]);
    // Routed on top of the transaction under way: key p0-k5 seen once more would count 2.
    const second = h.fetch([[0, [5, 6]]]);
    await new Promise((r) => setTimeout(r, 20));
    open();
    const outcome = await second;
    expect(outcome[0]!.status).toBe('rejected');
    expect(h.log).toContain('p1.commit failed');
    expect(h.log.filter((l) => l.startsWith('seek')).sort()).toEqual(['seek 0@5', 'seek 1@3']);
    // Nothing of either reached the state or the changelog.
    await h.state.flushed();
    expect([h.count(0, 'p0-k5'), h.count(0, 'p0-k6'), h.count(1, 'p1-k3')]).toEqual([0, 0, 0]);
    expect(h.changelog.partitions.get(0)?.records ?? []).toEqual([]);
    // Read again from the seek: counted once.
    await h.fetch([
      [0, [5, 6]],
      [1, [3]],
    ]);
    await h.loop.stop();
    expect([h.count(0, 'p0-k5'), h.count(0, 'p0-k6'), h.count(1, 'p1-k3')]).toEqual([1, 1, 1]);
    await h.state.close();
  });
});
