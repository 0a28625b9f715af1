const CHUNK_BYTES = 1024 * 1024;
const OUT_BYTES = 256 * 1024;

/**
 * A batch's COPY text lines, stored as UTF-8 bytes in shared 1 MiB chunks rather than as
 * strings: a partition holds up to three batches of 20,000 lines, and strings built field by
 * field live as trees of short strings in the JS heap until the batch commits (old-space
 * garbage the collector walks again and again). Here a line is written once into a chunk and
 * the heap keeps three numbers a line. `chunks` gives the bytes COPY reads, with or without each
 * line's row number (the load table's `seq`). Pure: no I/O.
 */
export class CopyLines {
  private readonly chunks: Buffer[] = [];
  private chunk: Buffer | undefined;
  private used = 0;
  /** Per line, 3 numbers: its chunk, its start in the chunk, its length in bytes (without the newline). */
  private refs: Uint32Array = new Uint32Array(3 * 1024);
  private count = 0;

  get length(): number {
    return this.count;
  }

  /** Appends a line (without its newline). */
  push(line: string): void {
    const max = line.length * 3; // UTF-8 takes at most 3 bytes a UTF-16 unit
    if (!this.chunk || this.used + max + 1 > this.chunk.length) {
      this.chunk = Buffer.allocUnsafe(Math.max(CHUNK_BYTES, max + 1));
      this.chunks.push(this.chunk);
      this.used = 0;
    }
    if (3 * this.count === this.refs.length) this.grow();
    const written = this.chunk.write(line, this.used, 'utf8');
    this.refs[3 * this.count] = this.chunks.length - 1;
    this.refs[3 * this.count + 1] = this.used;
    this.refs[3 * this.count + 2] = written;
    this.chunk[this.used + written] = 0x0a;
    this.used += written + 1;
    this.count++;
  }

  /** Line `i` as text (tests and messages; the load reads `chunks`). */
  line(i: number): string {
    return this.bytes(i).toString('utf8');
  }

  /**
   * Lines [lo, hi) as COPY input, in buffers of ~256 KiB: each line and its newline, or with
   * `seq` each line, a tab, its index and the newline.
   */
  *copyChunks(lo: number, hi: number, seq: boolean): Generator<Buffer> {
    let out = Buffer.allocUnsafe(OUT_BYTES);
    let used = 0;
    for (let i = lo; i < hi; i++) {
      const line = this.bytes(i);
      const need = line.length + (seq ? 13 : 1);
      if (used + need > out.length) {
        if (used > 0) yield out.subarray(0, used);
        out = Buffer.allocUnsafe(Math.max(OUT_BYTES, need));
        used = 0;
      }
      used += line.copy(out, used);
      if (seq) used += out.write(`\t${i}`, used, 'latin1');
      out[used++] = 0x0a;
    }
    if (used > 0) yield out.subarray(0, used);
  }

  private bytes(i: number): Buffer {
    if (i < 0 || i >= this.count) throw new RangeError(`no line ${i} (${this.count} lines)`);
    const at = this.refs[3 * i + 1]!;
    return this.chunks[this.refs[3 * i]!]!.subarray(at, at + this.refs[3 * i + 2]!);
  }

  private grow(): void {
    const refs = new Uint32Array(this.refs.length * 2);
    refs.set(this.refs);
    this.refs = refs;
  }
}
