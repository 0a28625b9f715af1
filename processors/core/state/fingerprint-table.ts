/**
 * A multiset of (fingerprint, locator) pairs, both unsigned 32-bit, in two typed arrays (open
 * addressing, linear probing): 8 bytes a slot outside the V8 heap's object graph (nothing for the
 * garbage collector to walk), at most half the slots used. A key index (key-index.ts) keeps in it a
 * fingerprint of a key and where the key is stored; several keys may share a fingerprint, so a
 * lookup yields every locator recorded with it, and the owner confirms with an exact read.
 * Fingerprints 0 and 1 mark empty and removed slots: `fingerprintOf` moves a hash off them.
 */
const EMPTY = 0;
const REMOVED = 1;
const MIN_CAPACITY = 64;

/** A 32-bit FNV-1a hash of a string's UTF-16 code units, never 0 or 1 (a FingerprintTable's marks). */
export function fingerprintOf(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  h >>>= 0;
  return h < 2 ? h + 2 : h;
}

export class FingerprintTable {
  private fps: Uint32Array;
  private locs: Uint32Array;
  private mask: number;
  /** Pairs held. */
  private live = 0;
  /** Slots marked removed (they lengthen probes until the next rebuild). */
  private removed = 0;

  constructor(capacity = MIN_CAPACITY) {
    const c = Math.max(MIN_CAPACITY, 2 ** Math.ceil(Math.log2(capacity)));
    this.fps = new Uint32Array(c);
    this.locs = new Uint32Array(c);
    this.mask = c - 1;
  }

  get size(): number {
    return this.live;
  }

  /** Slots (memory: 8 bytes each). */
  get capacity(): number {
    return this.fps.length;
  }

  /** The first slot of a fingerprint's probe (its bits mixed: fingerprints of a test seam may be tiny). */
  private home(fp: number): number {
    return Math.imul(fp ^ (fp >>> 16), 0x45d9f3b) & this.mask;
  }

  /** Whether the pair is held. */
  has(fp: number, loc: number): boolean {
    for (let i = this.home(fp); ; i = (i + 1) & this.mask) {
      const f = this.fps[i]!;
      if (f === EMPTY) return false;
      if (f === fp && this.locs[i] === loc) return true;
    }
  }

  /** Adds the pair unless held; whether it was added. */
  add(fp: number, loc: number): boolean {
    if (this.has(fp, loc)) return false;
    if ((this.live + this.removed + 1) * 2 > this.fps.length) this.rebuild(this.live + 1 > this.fps.length / 4 ? this.fps.length * 2 : this.fps.length);
    let i = this.home(fp);
    for (; this.fps[i]! > REMOVED; i = (i + 1) & this.mask);
    if (this.fps[i] === REMOVED) this.removed--;
    this.fps[i] = fp;
    this.locs[i] = loc;
    this.live++;
    return true;
  }

  /** Removes the pair if held. */
  remove(fp: number, loc: number): void {
    for (let i = this.home(fp); ; i = (i + 1) & this.mask) {
      const f = this.fps[i]!;
      if (f === EMPTY) return;
      if (f === fp && this.locs[i] === loc) {
        this.fps[i] = REMOVED;
        this.live--;
        this.removed++;
        return;
      }
    }
  }

  /** The locators held with the fingerprint (an empty array, shared, when none). */
  locators(fp: number): readonly number[] {
    let out: number[] | undefined;
    for (let i = this.home(fp); ; i = (i + 1) & this.mask) {
      const f = this.fps[i]!;
      if (f === EMPTY) return out ?? NONE;
      if (f === fp) (out ??= []).push(this.locs[i]!);
    }
  }

  /** Moves the pairs into `capacity` slots, dropping the removed marks. */
  private rebuild(capacity: number): void {
    const { fps, locs } = this;
    this.fps = new Uint32Array(capacity);
    this.locs = new Uint32Array(capacity);
    this.mask = capacity - 1;
    this.removed = 0;
    for (let j = 0; j < fps.length; j++) {
      const f = fps[j]!;
      if (f <= REMOVED) continue;
      let i = this.home(f);
      for (; this.fps[i] !== EMPTY; i = (i + 1) & this.mask);
      this.fps[i] = f;
      this.locs[i] = locs[j]!;
    }
  }
}

const NONE: readonly number[] = Object.freeze([]);
