import { describe, expect, it } from 'vitest';
import { CopyLines } from '../../processors/export/sql/copy-lines.js';

const text = (chunks: Iterable<Buffer>) => Buffer.concat([...chunks]).toString('utf8');

describe('sql output: CopyLines (a batch\'s COPY lines as bytes)', () => {
  it('gives back every line, and COPY input with and without row numbers, across chunks and growth', () => {
    const lines = new CopyLines();
    const expected: string[] = [];
    for (let i = 0; i < 5000; i++) {
      // Multi-byte text (2-, 3- and 4-byte UTF-8), and lines of ~600 bytes so 1 MiB chunks fill up.
      const line = `id-${i}\té-€-😀-${'x'.repeat(i % 600)}\t\\N`;
      expected.push(line);
      lines.push(line);
    }
    expect(lines.length).toBe(5000);
    expect([0, 1, 1023, 1024, 2047, 4999].map((i) => lines.line(i))).toEqual([0, 1, 1023, 1024, 2047, 4999].map((i) => expected[i]));
    expect(text(lines.copyChunks(0, 5000, false))).toBe(expected.map((l) => `${l}\n`).join(''));
    expect(text(lines.copyChunks(1200, 3301, true))).toBe(expected.slice(1200, 3301).map((l, k) => `${l}\t${1200 + k}\n`).join(''));
    expect([...lines.copyChunks(10, 10, true)]).toEqual([]);
    for (const chunk of lines.copyChunks(0, 5000, true)) expect(chunk.length).toBeLessThanOrEqual(256 * 1024);
    expect(() => lines.line(5000)).toThrow(RangeError);
  });

  it('keeps a line longer than a chunk whole', () => {
    const lines = new CopyLines();
    const huge = 'ü'.repeat(700_000); // 1.4 MB of UTF-8
    lines.push('a');
    lines.push(huge);
    lines.push('b');
    expect(lines.line(1)).toBe(huge);
    expect(text(lines.copyChunks(0, 3, true))).toBe(`a\t0\n${huge}\t1\nb\t2\n`);
  });
});
