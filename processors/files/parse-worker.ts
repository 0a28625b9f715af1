import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';
import { parentPort, workerData } from 'node:worker_threads';
import type { FromParser, ParseJob, ToParser } from './parse-protocol.js';
import { FirstCopies } from './first-copies.js';
import { BatchBuilder } from './prepare-batch.js';
import { FileFormatError } from './reasons.js';
import { readRecords } from './records.js';

/**
 * A file's parsing thread (see parse-thread.ts): the object's bytes in, as the ingest
 * thread reads them from S3; batches of prepared rows out (COPY text, events waiting for
 * an agent, rejects), never more than job.batchesAhead ahead of the writer.
 */

const job = workerData as ParseJob;
const port = parentPort!;
const post = (m: FromParser) => port.postMessage(m);

/** How often the thread reports its heap (sluice_files_parse_thread_heap_bytes). */
const HEAP_REPORT_MS = 1000;

function reportHeap(): void {
  const h = getHeapStatistics();
  const young = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
  post({ type: 'heap', heap: { used: h.used_heap_size, total: h.total_heap_size, new_space: young?.space_size ?? 0, external: (h as { external_memory?: number }).external_memory ?? 0 } });
}
setInterval(reportHeap, HEAP_REPORT_MS).unref();

const chunks: Uint8Array[] = [];
let ended = false;
let wake: (() => void) | undefined;
let untaken = 0;
/** COPY text buffers the writer gave back. */
const spare: ArrayBuffer[] = [];

port.on('message', (m: ToParser) => {
  if (m.type === 'chunk') chunks.push(m.data);
  else if (m.type === 'end') ended = true;
  else if (m.type === 'recycle') spare.push(m.buffer);
  else untaken--;
  wake?.();
});

const changed = () =>
  new Promise<void>((resolve) => {
    wake = () => {
      wake = undefined;
      resolve();
    };
  });

async function* body(): AsyncGenerator<Uint8Array> {
  for (;;) {
    const next = chunks.shift();
    if (next) {
      post({ type: 'pull' });
      yield next;
    } else if (ended) return;
    else await changed();
  }
}

async function send(builder: BatchBuilder): Promise<void> {
  while (untaken >= job.batchesAhead) await changed();
  untaken++;
  const batch = builder.finish();
  port.postMessage({ type: 'batch', batch } satisfies FromParser, [batch.named.copyText.buffer as ArrayBuffer]);
}

async function parse(): Promise<void> {
  const counter = { compressed: 0, uncompressed: 0 };
  // One index of first copies for the whole file: a batch is finished before the next one starts.
  const firstCopies = new FirstCopies();
  const newBatch = () => new BatchBuilder({ baseCurrency: job.baseCurrency, context: job.context }, spare.pop(), firstCopies);
  let batch = newBatch();
  try {
    for await (const record of readRecords(body(), { source: job.source, maxRecordBytes: job.maxRecordBytes }, counter)) {
      if (record.index < job.skipRecords) continue;
      batch.add(record);
      if (batch.read >= job.batchRows) {
        await send(batch);
        batch = newBatch();
      }
    }
    if (batch.read > 0) await send(batch);
    reportHeap();
    post({ type: 'done', uncompressed: counter.uncompressed });
  } catch (error) {
    if (!(error instanceof FileFormatError)) throw error;
    // The records before the failure are rows like any other; the ones after it are not read.
    if (batch.read > 0) await send(batch);
    post({ type: 'failed', reason: error.reason, message: error.message, line: error.line, uncompressed: counter.uncompressed });
  }
}

parse().catch((error: unknown) => {
  const e = error instanceof Error ? error : new Error(String(error));
  post({ type: 'crashed', message: e.message, stack: e.stack });
});
