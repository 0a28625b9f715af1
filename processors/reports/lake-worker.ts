import { parentPort, workerData } from 'node:worker_threads';
import { prepareDecompressors } from '../core/parquet/s3-columns.js';
import { createS3Client } from '../core/s3/client.js';
import { aggregatePartitions, type WorkerInput, type WorkerStart } from './lake-month.js';

/**
 * A lake reader thread (see aggregateMonth), kept between reports: its S3 client is made once;
 * each message is a job (partitions in), answered with its partial aggregate, one job at a time.
 */
const start = workerData as WorkerStart;
const s3 = createS3Client(start.s3);
// Process warnings (the AWS SDK's Node version notice, once per thread) go to the main thread, which emits each once.
process.removeAllListeners('warning');
process.on('warning', (w) => parentPort!.postMessage({ kind: 'warning', name: w.name, message: w.message }));
parentPort!.on('message', (input: WorkerInput) => {
  aggregatePartitions(s3, input.bucket, input.partitions, input.agentIds ? new Set(input.agentIds) : undefined, input.concurrency ?? 16, () =>
    parentPort!.postMessage({ kind: 'file' }),
  ).then(
    (result) => parentPort!.postMessage({ kind: 'done', result }),
    (error: unknown) => parentPort!.postMessage({ kind: 'error', message: (error as Error).message }),
  );
});
// Loaded (the imports above ran) and the zstd decoder compiled: a thread started ahead of the first report is ready for it.
// A decoder that fails to start is not an error here: the job that needs it reports it.
prepareDecompressors().then(
  () => parentPort!.postMessage({ kind: 'ready' }),
  () => parentPort!.postMessage({ kind: 'ready' }),
);
