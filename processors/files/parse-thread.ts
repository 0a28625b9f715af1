import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { PermanentError } from '../core/errors/errors.js';
import type { FromParser, ParseJob, ThreadHeap, ToParser } from './parse-protocol.js';
import type { PreparedBatch } from './prepare-batch.js';
import { FileFormatError } from './reasons.js';

/**
 * A file's records parsed, validated and enriched on a thread of their own, so the ingest
 * thread only reads S3 and writes Postgres while the next batch is prepared on another core.
 * Memory stays bounded: at most CHUNKS_IN_FLIGHT chunks of the object sent and not yet taken,
 * at most job.batchesAhead batches prepared and not yet written. A bad file ends the batches
 * with its FileFormatError (after the batch of the rows before the failure), as reading it
 * on this thread would; a fault of S3's stream ends them with that error (the thread is
 * stopped); so does a fault of the thread itself.
 */

/** Chunks of the object (as S3's stream yields them, ~16-64 KiB) sent ahead of the parser. */
const CHUNKS_IN_FLIGHT = 8;

/**
 * The parsing thread's young generation, bounded. Its live data is small (the batch being
 * built, the chunks in flight); the rest is the garbage of parsing. Left to V8, the young
 * generation grows with the allocation rate to 3 x 16 MiB and the thread's heap peaked at
 * ~70 MiB on a 1M-row file; at 12 MiB it stays at 20-45 MiB (sluice_files_parse_thread_heap_bytes,
 * measured in BENCHMARKS.md: File drops).
 */
const PARSE_THREAD_LIMITS = { maxYoungGenerationSizeMb: 12 };

const SIBLING = fileURLToPath(new URL('./parse-worker.js', import.meta.url));
/** From the TypeScript sources (tests), the compiled thread of the build (npm run build). */
const BUILT = fileURLToPath(new URL('../../dist/processors/files/parse-worker.js', import.meta.url));

function workerFile(): string {
  if (existsSync(SIBLING)) return SIBLING;
  if (existsSync(BUILT)) return BUILT;
  throw new PermanentError(`${SIBLING} is missing: build the project (npm run build)`);
}

/**
 * A chunk the parsing thread can own: the chunk itself when it is the whole of its own
 * buffer (most of an HTTP body's chunks: one socket read each), moved to the thread without
 * a copy, so its memory leaves this thread at once instead of waiting here, as garbage,
 * for a collection (on a 1M-row file that was tens of MiB of peak RSS); else a copy (a view
 * of a larger or shared buffer, Node's pool).
 */
function owned(chunk: Uint8Array): Uint8Array {
  const whole = chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength && chunk.buffer instanceof ArrayBuffer;
  return whole ? chunk : new Uint8Array(chunk);
}

export interface ParseCounter {
  compressed: number;
  uncompressed: number;
}

/** A batch as the writer gets it: release() once its COPY text is written (the thread fills the buffer again). */
export type ParsedBatch = PreparedBatch & { release(): void };

/** `onHeap`: the thread's heap, every second while it works (for the metrics). */
export async function* parseInThread(body: AsyncIterable<Uint8Array>, job: ParseJob, counter: ParseCounter, onHeap: (heap: ThreadHeap) => void = () => undefined): AsyncGenerator<ParsedBatch> {
  const worker = new Worker(workerFile(), { workerData: job, resourceLimits: PARSE_THREAD_LIMITS });
  const send = (m: ToParser, transfer: ArrayBuffer[] = []) => worker.postMessage(m, transfer);
  const inbox: FromParser[] = [];
  let fault: Error | undefined;
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const changed = () => new Promise<void>((resolve) => (wake = resolve));
  let credits = CHUNKS_IN_FLIGHT;
  let creditWaiter: (() => void) | undefined;
  let stopped = false;
  worker.on('message', (m: FromParser) => {
    if (m.type === 'heap') {
      onHeap(m.heap);
      return;
    }
    if (m.type === 'pull') {
      credits++;
      const w = creditWaiter;
      creditWaiter = undefined;
      w?.();
      return;
    }
    inbox.push(m);
    notify();
  });
  worker.on('error', (error) => {
    fault ??= new Error(`the file parsing thread failed: ${error.message}`, { cause: error });
    notify();
  });
  worker.on('exit', (code) => {
    if (!stopped) fault ??= new Error(`the file parsing thread exited (code ${code}) before the end of the file`);
    notify();
  });

  // Feeds the object to the thread, never more than CHUNKS_IN_FLIGHT ahead of it.
  const it = body[Symbol.asyncIterator]();
  const feed = (async () => {
    try {
      for (;;) {
        while (credits <= 0 && !stopped) await new Promise<void>((resolve) => (creditWaiter = resolve));
        if (stopped) return;
        const next = await it.next();
        if (next.done || stopped) break;
        counter.compressed += next.value.length;
        const data = owned(next.value);
        credits--;
        send({ type: 'chunk', data }, [data.buffer as ArrayBuffer]);
      }
      if (!stopped) send({ type: 'end' });
    } catch (error) {
      fault ??= error as Error;
      notify();
    }
  })();

  try {
    for (;;) {
      const m = inbox.shift();
      if (!m) {
        if (fault) throw fault;
        await changed();
        continue;
      }
      if (m.type === 'batch') {
        const { buffer } = m.batch.named.copyText;
        let released = false;
        yield Object.assign(m.batch, {
          release: () => {
            if (released || stopped) return;
            released = true;
            send({ type: 'recycle', buffer: buffer as ArrayBuffer }, [buffer as ArrayBuffer]);
          },
        });
        send({ type: 'taken' });
      } else if (m.type === 'done') {
        counter.uncompressed = m.uncompressed;
        return;
      } else if (m.type === 'failed') {
        counter.uncompressed = m.uncompressed;
        throw new FileFormatError(m.reason, m.message, m.line);
      } else if (m.type === 'crashed') {
        throw new Error(`the file parsing thread failed: ${m.message}`, { cause: Object.assign(new Error(m.message), { stack: m.stack }) });
      }
    }
  } finally {
    stopped = true;
    creditWaiter?.();
    await worker.terminate();
    // Stops S3's stream when the file ends early (a failure, a stop); a pending read ends with it.
    const stream = body as { destroy?: () => void };
    if (typeof stream.destroy === 'function') stream.destroy();
    else void it.return?.().catch(() => undefined);
    await feed;
  }
}
