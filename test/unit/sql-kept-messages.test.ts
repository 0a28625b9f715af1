import { describe, expect, it } from 'vitest';
import { KeptMessages } from '../../processors/export/sql/kept-messages.js';

describe('KeptMessages: a batch keeps its rows\' consumed messages compactly, for a sql_rejected dead letter', () => {
  it('gives back every message as added: key, value, headers, offset, timestamp, nulls included', () => {
    const kept = new KeptMessages();
    const fetchBuffer = Buffer.from('xxkey-1value-1yy');
    const messages = [
      { key: fetchBuffer.subarray(2, 7), value: fetchBuffer.subarray(7, 14), headers: {}, offset: '9007199254740993', timestamp: '1790000000000' },
      { key: null, value: Buffer.from([0, 1, 2, 255]), headers: { trace: Buffer.from('t-1'), tags: [Buffer.from('a'), Buffer.from('b')] }, offset: '9007199254740994', timestamp: '1790000000001' },
      { key: Buffer.alloc(0), value: null, headers: {}, offset: '9007199254741000', timestamp: '-1' },
      { key: Buffer.from('k'), value: Buffer.alloc(3 * 1024 * 1024, 7), headers: {}, offset: '9007199254741001', timestamp: '0001' }, // larger than a chunk; a timestamp that is not a plain number
    ];
    for (const m of messages) kept.add(m);
    fetchBuffer.fill(0); // the fetch's memory is reused: the kept bytes are a copy
    expect(kept.length).toBe(4);
    expect(kept.get(0)).toEqual({ key: Buffer.from('key-1'), value: Buffer.from('value-1'), headers: {}, offset: '9007199254740993', timestamp: '1790000000000' });
    expect(kept.get(1)).toEqual(messages[1]);
    expect(kept.get(2)).toEqual(messages[2]);
    const big = kept.get(3);
    expect(big.value!.equals(messages[3]!.value!)).toBe(true);
    expect({ ...big, value: big.value!.length }).toEqual({ ...messages[3], value: 3 * 1024 * 1024 });
    expect(() => kept.get(4)).toThrow(RangeError);
  });

  it('keeps many rows in few chunks', () => {
    const kept = new KeptMessages();
    for (let i = 0; i < 20_000; i++) kept.add({ key: null, value: Buffer.from(`value-${i}`.padEnd(200, '.')), headers: {}, offset: String(1000 + i), timestamp: String(1_790_000_000_000 + i) });
    expect(kept.get(12_345)).toEqual({ key: null, value: Buffer.from('value-12345'.padEnd(200, '.')), headers: {}, offset: '13345', timestamp: '1790000012345' });
  });
});
