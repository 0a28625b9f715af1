import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { Message } from 'kafkajs';
import { flushBatch, type FlushPorts } from '../../processors/export/flusher.js';
import { PartitionBatch } from '../../processors/export/partition-batch.js';
import { StepChain } from '../../processors/export/steps.js';
import { UploadAbandonedError } from '../../processors/core/s3/upload.js';
import { FakeOutput, message, rebalanceError, type MemoryBatch } from '../support/export-fakes.js';

const logger = pino({ level: 'silent' });

/** A batch of offsets 10..10+n-1 placed in `output`, plus one dead letter of a processor. */
function batchOf(output: FakeOutput, n: number, withDeadLetter = false): PartitionBatch {
  const b = new PartitionBatch('events', 2, new StepChain([]).forPartition(), output.openBatch());
  for (let i = 0; i < n; i++) {
    const m = message(10 + i);
    b.consumedMessage(m.offset, 10, Date.now());
    expect((b.output as MemoryBatch).add({ value: { id: m.offset }, topic: 'events', partition: 2, offset: m.offset, message: m })).toBeUndefined();
  }
  if (withDeadLetter) {
    const m = message(10 + n);
    b.consumedMessage(m.offset, 10, Date.now());
    b.deadLetter({ value: m.value, headers: { reason: 'mapping_error' } }, 'mapping_error');
  }
  return b;
}

function ports(output: FakeOutput, log: string[], o: { commitFails?: unknown; sendFails?: unknown } = {}): FlushPorts & { letters: Message[] } {
  const letters: Message[] = [];
  return {
    output,
    logger,
    letters,
    sendDeadLetters: async (messages) => {
      log.push(`dlq ${messages.length}`);
      if (o.sendFails) throw o.sendFails;
      letters.push(...messages);
    },
    commitOffset: async (topic, partition, next) => {
      if (o.commitFails) throw o.commitFails;
      log.push(`group ${topic}/${partition} ${next}`);
    },
    deadLetterFor: (record, reason, error) => ({ value: record.message.value ?? null, headers: { reason, error, offset: record.offset } }),
  };
}

const ctx = (owned: () => boolean = () => true) => ({ owned, signal: new AbortController().signal, committedOffset: 10n });

describe('flusher', () => {
  it('writes, sends the dead letters, commits the output and then the group, in that order', async () => {
    const output = new FakeOutput();
    const p = ports(output, output.calls);
    const report = await flushBatch(batchOf(output, 3, true), p, ctx());
    expect(output.calls).toEqual(['write events/2 10..14', 'dlq 1', 'commit', 'group events/2 14']);
    expect(report).toMatchObject({ result: 'committed', next: 14n, records: 3, deadLetters: [{ reason: 'mapping_error' }], rejected: 0 });
    expect(output.contexts[0]).toMatchObject({ startOffset: '10', committedOffset: 10n, nextOffset: 14n });
    expect(output.landed.map((r) => r.offset)).toEqual(['10', '11', '12']);
  });

  it('sends the rows the target refused to the DLQ before the commit, and the rest of the batch lands', async () => {
    const output = new FakeOutput('output');
    output.rejectRow = (r) => (r.offset === '11' ? 'value too long for type character varying(3)' : undefined);
    const p = ports(output, output.calls);
    const report = await flushBatch(batchOf(output, 3), p, ctx());
    expect(output.calls).toEqual(['write events/2 10..13', 'dlq 1', 'commit', 'group events/2 13']);
    expect(p.letters[0]!.headers).toMatchObject({ reason: 'sql_rejected', error: 'value too long for type character varying(3)', offset: '11' });
    expect(report).toMatchObject({ result: 'committed', records: 2, rejected: 1, deadLetters: [{ reason: 'sql_rejected' }] });
    expect(output.landed.map((r) => r.offset)).toEqual(['10', '12']);
    expect(output.stored.get('events/2')).toBe(13n);
  });

  it('commits nothing when the partition moves during the write, and rolls the write back', async () => {
    const output = new FakeOutput();
    let owned = true;
    output.rejectRow = () => {
      owned = false; // the group rebalanced while the target wrote
      return undefined;
    };
    const report = await flushBatch(batchOf(output, 2), ports(output, output.calls), ctx(() => owned));
    expect(report.result).toBe('lost');
    expect(output.calls).toEqual(['write events/2 10..12', 'abort']);
    expect(output.landed).toEqual([]);
  });

  it('says lost for an abandoned upload or a refused commit of an old generation, failed for any other fault', async () => {
    for (const [fault, where, expected] of [
      [new UploadAbandonedError('cut'), 'write', 'lost'],
      [rebalanceError(), 'commit', 'lost'],
      [Object.assign(new Error('broker away'), { name: 'KafkaJSConnectionError' }), 'dlq', 'failed'],
      [new TypeError('a bug in the output'), 'write', 'failed'],
    ] as const) {
      const output = new FakeOutput();
      if (where === 'write') output.failWith = fault;
      const p = ports(output, output.calls, where === 'commit' ? { commitFails: fault } : where === 'dlq' ? { sendFails: fault } : {});
      const report = await flushBatch(batchOf(output, 2, true), p, ctx());
      expect(report).toMatchObject({ result: expected, error: fault });
      expect(output.calls.some((c) => c.startsWith('group'))).toBe(false);
      if (where !== 'write') expect(output.calls).toContain('abort');
    }
  });

  it('flushes a batch once', async () => {
    const output = new FakeOutput();
    const b = batchOf(output, 1);
    await flushBatch(b, ports(output, output.calls), ctx());
    await expect(flushBatch(b, ports(output, output.calls), ctx())).rejects.toThrow('sealed once');
  });
});
