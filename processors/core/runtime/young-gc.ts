import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * A young-generation collection (a scavenge) of the calling thread's heap, on demand.
 *
 * For a loop that reads a socket fast and keeps nothing: each read is a fresh buffer of
 * up to 64 KiB outside the V8 heap, freed only when a collection finds its small wrapper
 * dead. Such a loop allocates too little on the heap to cause a scavenge, and V8 collects
 * for external memory only after tens of MiB: on a 32 MiB object the dead buffers piled
 * up to ~40 MiB of RSS that the allocator then kept (BENCHMARKS.md, File drops). A
 * scavenge every few MiB read bounds them (collectingEvery: `sluice files` reads each S3
 * object through it, which alone keeps its peak RSS flat with V8's default young generation);
 * with little live in the young generation it costs well under a millisecond.
 *
 * V8 gives `gc` only to contexts created while --expose-gc is set: the flag is set for
 * the time of creating one and unset again (what Jest does to measure heaps), so the
 * program's own global object never gets a `gc` function. A process started with
 * --expose-gc uses its own.
 */
type Gc = (options: { type: 'minor' | 'major'; execution?: 'sync' | 'async' }) => void;

let gc: Gc | undefined;

function collector(): Gc {
  if (gc) return gc;
  const own = (globalThis as { gc?: Gc }).gc;
  if (own) return (gc = own);
  setFlagsFromString('--expose-gc');
  try {
    gc = runInNewContext('gc') as Gc;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
  return gc;
}

export function collectYoungGeneration(): void {
  collector()({ type: 'minor' });
}

/** A stream of chunks that can be stopped (an S3 object's body, a Node Readable). */
export type ChunkStream = AsyncIterable<Uint8Array> & { destroy?: () => void };

/**
 * The chunks of `body`, with a young-generation collection each time `bytesPerCollection`
 * more bytes have been read: for a reader of a fast socket, whatever it does with the chunks
 * (hashes them, hands them on). destroy() stops `body`.
 */
export function collectingEvery(body: ChunkStream, bytesPerCollection: number): AsyncIterable<Uint8Array> & { destroy: () => void } {
  return {
    async *[Symbol.asyncIterator]() {
      let uncollected = 0;
      for await (const chunk of body) {
        uncollected += chunk.length;
        if (uncollected >= bytesPerCollection) {
          uncollected = 0;
          collectYoungGeneration();
        }
        yield chunk;
      }
    },
    destroy: () => body.destroy?.(),
  };
}
