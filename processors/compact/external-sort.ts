import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { PermanentError } from '../core/errors/errors.js';
import type { LakeColumn, LakeType, LakeValue } from '../core/parquet/lake-schema.js';

/**
 * The external sort behind compaction: rows of a partition of any size sorted by
 * (agent_id UTF-8 bytes, occurred_at, event_id bytes, input order) in memory bounded by a
 * budget, not by the partition's rows.
 *
 * Rows are encoded into a binary arena as they arrive (values exact: int64 and timestamps as
 * their 64 bits, strings as their UTF-8 bytes). When the arena reaches the budget its rows are
 * sorted and written to a run file in the temp directory; the last run stays in memory. The
 * merge reads every run through a small buffer and yields rows in order, dropping a row whose
 * (agent, time, event_id) equals the previous one's: copies of one event sort next to each
 * other and the first in input order (offset order) is kept. An event_id that appears with two
 * different agents or times is not a copy and is kept twice: the id check (id-check.ts) then
 * refuses the compaction, so nothing is silently lost or merged.
 *
 * Run file format: per row, u32 length of the rest, f64 input sequence number, then per
 * column a presence byte and the value (string/bytes: u32 length + bytes; int64-like: 8 bytes;
 * int32-like and float: 4; double: 8; boolean: 1).
 */

export interface SortKeys {
  /** Column indexes of agent_id, occurred_at and event_id in the schema's columns. */
  agent: number;
  time: number;
  id: number;
}

/** One row as the merge yields it. `values` is reused for the next row: copy what you keep. */
export interface SortedRow {
  values: LakeValue[];
  /** The event_id as a latin1 key of its UTF-8 bytes (exact identity). */
  id: string;
  seq: number;
}

/** How a column is held in the arena and in run files: what compaction copies exactly (int64 and timestamps as their 64 bits). */
export type Kind = 'string' | 'bytes' | 'i64' | 'i32' | 'f32' | 'f64' | 'bool';

/** The kind of each lake type (one table: the sort's codec and rewrite's column getters share it). */
const KIND_OF: Record<LakeType, Kind> = {
  string: 'string',
  bytes: 'bytes',
  boolean: 'bool',
  int32: 'i32',
  date: 'i32',
  time_ms: 'i32',
  int64: 'i64',
  time_us: 'i64',
  timestamp_us: 'i64',
  timestamp_ms: 'i64',
  local_timestamp_us: 'i64',
  local_timestamp_ms: 'i64',
  float: 'f32',
  double: 'f64',
};

export function kindOf(c: LakeColumn): Kind {
  const kind = KIND_OF[c.type];
  if (!kind) throw new PermanentError(`compaction cannot copy column ${c.name} of type ${String(c.type)}`);
  return kind;
}

/** One kind's encoding of a present value: its bytes at most (to grow the arena), writer and reader. */
interface KindCodec {
  maxBytes(v: LakeValue): number;
  /** Writes `v` at `at`; returns the bytes written. */
  write(buf: Buffer, at: number, v: LakeValue): number;
  /** The bytes of the value at `at`. */
  width(buf: Buffer, at: number): number;
  read(buf: Buffer, at: number): LakeValue;
}

function fixed(width: number, write: (buf: Buffer, at: number, v: LakeValue) => void, read: (buf: Buffer, at: number) => LakeValue): KindCodec {
  return {
    maxBytes: () => width,
    write: (buf, at, v) => {
      write(buf, at, v);
      return width;
    },
    width: () => width,
    read,
  };
}

/** Strings and bytes: u32 length + bytes. */
const lengthPrefixed = (read: (buf: Buffer, start: number, end: number) => LakeValue, maxBytes: (v: LakeValue) => number, put: (buf: Buffer, at: number, v: LakeValue) => number): KindCodec => ({
  maxBytes: (v) => 4 + maxBytes(v),
  write: (buf, at, v) => {
    const n = put(buf, at + 4, v);
    buf.writeUInt32LE(n, at);
    return 4 + n;
  },
  width: (buf, at) => 4 + buf.readUInt32LE(at),
  read: (buf, at) => read(buf, at + 4, at + 4 + buf.readUInt32LE(at)),
});

const CODECS: Record<Kind, KindCodec> = {
  string: lengthPrefixed(
    (buf, start, end) => buf.toString('utf8', start, end),
    (v) => (v as string).length * 3,
    (buf, at, v) => buf.write(v as string, at, 'utf8'),
  ),
  bytes: lengthPrefixed(
    (buf, start, end) => new Uint8Array(buf.subarray(start, end)),
    (v) => (v as Uint8Array).byteLength,
    (buf, at, v) => {
      buf.set(v as Uint8Array, at);
      return (v as Uint8Array).byteLength;
    },
  ),
  i64: fixed(8, (buf, at, v) => buf.writeBigInt64LE(typeof v === 'bigint' ? v : BigInt(v as number), at), (buf, at) => buf.readBigInt64LE(at)),
  i32: fixed(4, (buf, at, v) => buf.writeInt32LE(v as number, at), (buf, at) => buf.readInt32LE(at)),
  f32: fixed(4, (buf, at, v) => buf.writeFloatLE(v as number, at), (buf, at) => buf.readFloatLE(at)),
  f64: fixed(8, (buf, at, v) => buf.writeDoubleLE(v as number, at), (buf, at) => buf.readDoubleLE(at)),
  bool: fixed(1, (buf, at, v) => void (buf[at] = v ? 1 : 0), (buf, at) => buf[at] === 1),
};

/** Per in-memory row, besides its encoded bytes: its keys and offsets (an estimate, used to keep the budget). */
const ROW_OVERHEAD = 120;

/** A growable byte buffer. */
class Arena {
  buf: Buffer;
  len = 0;
  constructor(initial: number) {
    this.buf = Buffer.allocUnsafe(initial);
  }
  ensure(extra: number): void {
    if (this.len + extra <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + extra));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }
}

export class RowCodec {
  private readonly codecs: KindCodec[];
  private readonly strings: boolean[];
  constructor(readonly columns: readonly LakeColumn[]) {
    const kinds = columns.map(kindOf);
    this.codecs = kinds.map((k) => CODECS[k]);
    this.strings = kinds.map((k) => k === 'string');
  }

  /** Appends one encoded row (length prefix included) to the arena; returns its start. */
  encode(a: Arena, values: readonly LakeValue[], seq: number): number {
    const start = a.len;
    a.ensure(12);
    a.len += 4;
    a.buf.writeDoubleLE(seq, a.len);
    a.len += 8;
    for (let c = 0; c < this.codecs.length; c++) {
      const v = values[c];
      if (v === null || v === undefined) {
        a.ensure(1);
        a.buf[a.len++] = 0;
        continue;
      }
      const codec = this.codecs[c]!;
      a.ensure(1 + codec.maxBytes(v));
      a.buf[a.len++] = 1;
      a.len += codec.write(a.buf, a.len, v);
    }
    a.buf.writeUInt32LE(a.len - start - 4, start);
    return start;
  }

  /** Decodes the row at `at` (its length prefix) into `values`; returns its sequence number. `latin1Of` gets the UTF-8 bytes of each string value. */
  decode(buf: Buffer, at: number, values: LakeValue[], latin1Of?: (column: number, start: number, end: number) => void): number {
    let p = at + 4;
    const seq = buf.readDoubleLE(p);
    p += 8;
    for (let c = 0; c < this.codecs.length; c++) {
      if (buf[p++] === 0) {
        values[c] = null;
        continue;
      }
      const codec = this.codecs[c]!;
      const width = codec.width(buf, p);
      values[c] = codec.read(buf, p);
      if (latin1Of && this.strings[c]) latin1Of(c, p + 4, p + width);
      p += width;
    }
    return seq;
  }
}

/** Sort keys of one row, compared by (agent, time, id, seq); strings are latin1 keys of the UTF-8 bytes, so `<` is byte order. */
interface Keyed {
  agent: string;
  time: number;
  id: string;
  seq: number;
}

export function compareKeys(a: Keyed, b: Keyed): number {
  if (a.agent !== b.agent) return a.agent < b.agent ? -1 : 1;
  if (a.time !== b.time) return a.time < b.time ? -1 : 1;
  if (a.id !== b.id) return a.id < b.id ? -1 : 1;
  return a.seq - b.seq;
}

const latin1 = (v: LakeValue): string => (v === null || v === undefined ? '' : Buffer.from(v as string, 'utf8').toString('latin1'));
const timeKey = (v: LakeValue): number => (v === null || v === undefined ? 0 : Number(v));

/** A source of sorted rows for the merge. */
interface Cursor extends Keyed {
  values: LakeValue[];
  /** Loads the next row; false at the end. */
  next(): boolean;
  close(): void;
}

class MemoryRun implements Cursor {
  agent = '';
  time = 0;
  id = '';
  seq = 0;
  values: LakeValue[];
  private i = 0;
  constructor(
    private readonly codec: RowCodec,
    private readonly buf: Buffer,
    private readonly order: readonly Keyed[],
    private readonly starts: readonly number[],
  ) {
    this.values = new Array<LakeValue>(codec.columns.length);
  }
  next(): boolean {
    if (this.i >= this.order.length) return false;
    const k = this.order[this.i]!;
    this.codec.decode(this.buf, this.starts[(k as Keyed & { row: number }).row]!, this.values);
    this.agent = k.agent;
    this.time = k.time;
    this.id = k.id;
    this.seq = k.seq;
    this.i++;
    return true;
  }
  close(): void {}
}

class FileRun implements Cursor {
  agent = '';
  time = 0;
  id = '';
  seq = 0;
  values: LakeValue[];
  private buf: Buffer;
  private pos = 0;
  private end = 0;
  private eof = false;
  private fd: number | undefined;
  constructor(
    private readonly codec: RowCodec,
    private readonly keys: SortKeys,
    path: string,
    bufferBytes: number,
  ) {
    this.values = new Array<LakeValue>(codec.columns.length);
    this.buf = Buffer.allocUnsafe(bufferBytes);
    this.fd = openSync(path, 'r');
  }
  /** Makes sure `n` bytes from pos are in the buffer (false at the end of the file). */
  private fill(n: number): boolean {
    if (this.end - this.pos >= n) return true;
    if (this.eof) return false;
    if (n > this.buf.length) {
      const bigger = Buffer.allocUnsafe(Math.max(n, this.buf.length * 2));
      this.buf.copy(bigger, 0, this.pos, this.end);
      this.buf = bigger;
    } else this.buf.copy(this.buf, 0, this.pos, this.end);
    this.end -= this.pos;
    this.pos = 0;
    while (this.end < n && !this.eof) {
      const read = readSync(this.fd!, this.buf, this.end, this.buf.length - this.end, null);
      if (read === 0) this.eof = true;
      this.end += read;
    }
    return this.end - this.pos >= n;
  }
  next(): boolean {
    if (!this.fill(4)) {
      if (this.end !== this.pos) throw new PermanentError('a compaction run file ends inside a row (the temp directory is damaged or full)');
      return false;
    }
    const len = this.buf.readUInt32LE(this.pos);
    if (!this.fill(4 + len)) throw new PermanentError('a compaction run file ends inside a row (the temp directory is damaged or full)');
    const k = this.keys;
    this.seq = this.codec.decode(this.buf, this.pos, this.values, (c, s, e) => {
      if (c === k.agent) this.agent = this.buf.toString('latin1', s, e);
      else if (c === k.id) this.id = this.buf.toString('latin1', s, e);
    });
    if (this.values[k.agent] === null) this.agent = '';
    if (this.values[k.id] === null) this.id = '';
    this.time = timeKey(this.values[k.time]);
    this.pos += 4 + len;
    return true;
  }
  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

export interface ExternalSorterOptions {
  dir: string;
  columns: readonly LakeColumn[];
  keys: SortKeys;
  /** Bytes of rows held in memory before a sorted run is written to disk. */
  memoryBytes: number;
  /** Read buffer of each run during the merge (default 256 KiB). */
  readBufferBytes?: number;
}

export class ExternalSorter {
  private readonly codec: RowCodec;
  private arena: Arena;
  private starts: number[] = [];
  private keyed: (Keyed & { row: number })[] = [];
  private readonly runs: string[] = [];
  private seq = 0;
  /** Rows added. */
  rows = 0;
  /** Bytes written to run files. */
  spilledBytes = 0;

  constructor(private readonly o: ExternalSorterOptions) {
    if (!(o.memoryBytes > 0)) throw new PermanentError('the compaction sort needs a positive memory budget');
    this.codec = new RowCodec(o.columns);
    this.arena = new Arena(Math.min(1 << 20, o.memoryBytes));
  }

  get runCount(): number {
    return this.runs.length + (this.starts.length > 0 ? 1 : 0);
  }

  /** Adds a row (values in the schema's column order); rows added first win among copies of an event. */
  add(values: readonly LakeValue[]): void {
    const k = this.o.keys;
    const start = this.codec.encode(this.arena, values, this.seq);
    const row = this.starts.push(start) - 1;
    this.keyed.push({ agent: latin1(values[k.agent]), time: timeKey(values[k.time]), id: latin1(values[k.id]), seq: this.seq, row });
    this.seq++;
    this.rows++;
    if (this.arena.len + this.starts.length * ROW_OVERHEAD >= this.o.memoryBytes) this.spill();
  }

  /** Sorts the rows in memory and writes them as one run file. */
  private spill(): void {
    this.keyed.sort(compareKeys);
    const path = join(this.o.dir, `run-${this.runs.length}.bin`);
    const fd = openSync(path, 'wx');
    try {
      const out = Buffer.allocUnsafe(1 << 20);
      let used = 0;
      const flush = () => {
        let at = 0;
        while (at < used) at += writeSync(fd, out, at, used - at);
        this.spilledBytes += used;
        used = 0;
      };
      for (const k of this.keyed) {
        const s = this.starts[k.row]!;
        const len = 4 + this.arena.buf.readUInt32LE(s);
        if (used + len > out.length) flush();
        if (len > out.length) {
          let at = 0;
          while (at < len) at += writeSync(fd, this.arena.buf, s + at, len - at);
          this.spilledBytes += len;
        } else {
          this.arena.buf.copy(out, used, s, s + len);
          used += len;
        }
      }
      flush();
    } finally {
      closeSync(fd);
    }
    this.runs.push(path);
    this.starts = [];
    this.keyed = [];
    this.arena = new Arena(Math.min(1 << 20, this.o.memoryBytes));
  }

  /**
   * The rows in order, copies of an event dropped (counted in `dropped`). The sorter cannot be
   * added to afterwards.
   */
  *merged(stats: { dropped: number }): Generator<SortedRow> {
    const cursors: Cursor[] = this.runs.map((path) => new FileRun(this.codec, this.o.keys, path, this.o.readBufferBytes ?? 256 * 1024));
    if (this.starts.length > 0) {
      this.keyed.sort(compareKeys);
      cursors.push(new MemoryRun(this.codec, this.arena.buf, this.keyed, this.starts));
    }
    try {
      const heap = cursors.filter((c) => c.next());
      const less = (a: number, b: number) => compareKeys(heap[a]!, heap[b]!) < 0;
      const down = (i: number) => {
        for (;;) {
          const l = 2 * i + 1;
          const r = l + 1;
          let m = i;
          if (l < heap.length && less(l, m)) m = l;
          if (r < heap.length && less(r, m)) m = r;
          if (m === i) return;
          [heap[i], heap[m]] = [heap[m]!, heap[i]!];
          i = m;
        }
      };
      for (let i = (heap.length >> 1) - 1; i >= 0; i--) down(i);
      let last: Keyed | undefined;
      const out: SortedRow = { values: [], id: '', seq: 0 };
      while (heap.length > 0) {
        const top = heap[0]!;
        if (last && last.id === top.id && last.agent === top.agent && last.time === top.time) {
          stats.dropped++;
        } else {
          last = { agent: top.agent, time: top.time, id: top.id, seq: top.seq };
          out.values = top.values;
          out.id = top.id;
          out.seq = top.seq;
          yield out;
        }
        if (!top.next()) {
          top.close();
          const tail = heap.pop()!;
          if (heap.length === 0) break;
          if (tail !== top) heap[0] = tail;
        }
        down(0);
      }
    } finally {
      for (const c of cursors) c.close();
    }
  }
}
