/**
 * The first copy of each event_id in a batch, found again by its event_id with no string or
 * object kept per row. Each first copy is a line of the batch's COPY text (which starts
 * with the event_id and a tab), remembered as its place in those bytes, its line in the
 * file and the hash of its event_id, in typed arrays that the next batch reuses.
 *
 * Why not a Map of event_id -> line: it kept ~400 bytes of strings and objects per row alive
 * for the whole batch; they survived into the parsing thread's old space, which then swung
 * between ~20 and ~47 MiB with each major collection, and the longer the file the higher
 * the sampled peak RSS (BENCHMARKS.md, File drops: "Peak RSS, the parsing thread's old space").
 */

/** FNV-1a over the UTF-16 code units: cheap for a 36-character UUID, spread well enough for a table at most half full. */
function hashOf(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h | 0;
}

/** Whether `bytes` at `at` hold `text` followed by a tab (the first field of a COPY line). */
function startsWithField(bytes: Uint8Array, at: number, text: string): boolean {
  if (at + text.length >= bytes.length || bytes[at + text.length] !== 0x09) return false;
  for (let i = 0; i < text.length; i++) {
    // An event_id is a UUID (ASCII); any other code unit never equals a single byte of UTF-8 text here.
    if (bytes[at + i] !== text.charCodeAt(i)) return false;
  }
  return true;
}

export class FirstCopies {
  /** Open addressing: row + 1 per slot, 0 = empty; twice the rows' capacity, a power of two. */
  private slots = new Int32Array(2048);
  private hashes = new Int32Array(1024);
  private starts = new Int32Array(1024);
  private ends = new Int32Array(1024);
  /** Line numbers in the file (a float: a file may pass 2^31 lines). */
  private fileLines = new Float64Array(1024);
  private count = 0;

  /** Forgets every row (a new batch, a new COPY text); keeps the memory. */
  reset(): void {
    if (this.count > 0) this.slots.fill(0);
    this.count = 0;
  }

  /** The row whose COPY line in `bytes` starts with `eventId`, else -1. */
  find(eventId: string, bytes: Uint8Array): number {
    const hash = hashOf(eventId);
    const mask = this.slots.length - 1;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const row = this.slots[slot]! - 1;
      if (row < 0) return -1;
      if (this.hashes[row] === hash && startsWithField(bytes, this.starts[row]!, eventId)) return row;
    }
  }

  /** Remembers the line [start, end) of the COPY text (without its line feed) as the first copy of `eventId`, from line `fileLine` of the file. */
  add(eventId: string, start: number, end: number, fileLine: number): void {
    if (this.count === this.hashes.length) this.grow();
    const row = this.count++;
    const hash = hashOf(eventId);
    this.hashes[row] = hash;
    this.starts[row] = start;
    this.ends[row] = end;
    this.fileLines[row] = fileLine;
    this.place(row, hash);
  }

  /** Whether row `row`'s line in `bytes` is exactly `line` (UTF-8). */
  sameLine(row: number, bytes: Buffer, line: string): boolean {
    const start = this.starts[row]!;
    const end = this.ends[row]!;
    return Buffer.byteLength(line, 'utf8') === end - start && bytes.toString('utf8', start, end) === line;
  }

  fileLine(row: number): number {
    return this.fileLines[row]!;
  }

  private place(row: number, hash: number): void {
    const mask = this.slots.length - 1;
    let slot = hash & mask;
    while (this.slots[slot] !== 0) slot = (slot + 1) & mask;
    this.slots[slot] = row + 1;
  }

  private grow(): void {
    const capacity = this.hashes.length * 2;
    const widen = <T extends Int32Array | Float64Array>(a: T, make: (n: number) => T): T => {
      const b = make(capacity);
      b.set(a);
      return b;
    };
    this.hashes = widen(this.hashes, (n) => new Int32Array(n));
    this.starts = widen(this.starts, (n) => new Int32Array(n));
    this.ends = widen(this.ends, (n) => new Int32Array(n));
    this.fileLines = widen(this.fileLines, (n) => new Float64Array(n));
    this.slots = new Int32Array(capacity * 2);
    for (let row = 0; row < this.count; row++) this.place(row, this.hashes[row]!);
  }
}
