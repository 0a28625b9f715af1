import { parentPort, workerData } from 'node:worker_threads';
import type { FromParser, ParseJob, ToParser } from './parse-protocol.js';
import { prepareBatch } from './prepare-batch.js';
import { FileFormatError } from './reasons.js';
import { readRecords, type FileRecord } from './records.js';

/**
 * A file's parsing thread (see parse-thread.ts): the object's bytes in, as the ingest
 * thread reads them from S3; batches of prepared rows out (COPY text, events waiting for
 * an agent, rejects), never more than job.batchesAhead ahead of the writer.
 */

const job = workerData as ParseJob;
const port = parentPort!;
const post = (m: FromParser) => port.postMessage(m);

const chunks: Uint8Array[] = [];
let ended = false;
let wake: (() => void) | undefined;
let untaken = 0;

port.on('message', (m: ToParser) => {
  if (m.type === 'chunk') chunks.push(m.data);
  else if (m.type === 'end') ended = true;
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

async function send(records: FileRecord[]): Promise<void> {
  while (untaken >= job.batchesAhead) await changed();
  untaken++;
  post({ type: 'batch', batch: prepareBatch(records, { baseCurrency: job.baseCurrency, context: job.context }) });
}

async function parse(): Promise<void> {
  const counter = { compressed: 0, uncompressed: 0 };
  let batch: FileRecord[] = [];
  try {
    for await (const record of readRecords(body(), { source: job.source, maxRecordBytes: job.maxRecordBytes }, counter)) {
      if (record.index < job.skipRecords) continue;
      batch.push(record);
      if (batch.length >= job.batchRows) {
        await send(batch);
        batch = [];
      }
    }
    if (batch.length > 0) await send(batch);
    post({ type: 'done', uncompressed: counter.uncompressed });
  } catch (error) {
    if (!(error instanceof FileFormatError)) throw error;
    // The records before the failure are rows like any other; the ones after it are not read.
    if (batch.length > 0) await send(batch);
    post({ type: 'failed', reason: error.reason, message: error.message, line: error.line, uncompressed: counter.uncompressed });
  }
}

parse().catch((error: unknown) => {
  const e = error instanceof Error ? error : new Error(String(error));
  post({ type: 'crashed', message: e.message, stack: e.stack });
});
