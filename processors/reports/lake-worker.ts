import { parentPort, workerData } from 'node:worker_threads';
import { createS3Client } from '../core/s3/client.js';
import { aggregatePartitions, type WorkerInput } from './lake-month.js';

/** A lake reader thread (see aggregateMonth): its partitions in, its partial aggregate out. */
const input = workerData as WorkerInput;
// Process warnings (the AWS SDK's Node version notice, once per thread) go to the main thread, which emits each once.
process.removeAllListeners('warning');
process.on('warning', (w) => parentPort!.postMessage({ kind: 'warning', name: w.name, message: w.message }));
try {
  const result = await aggregatePartitions(
    createS3Client(input.s3),
    input.bucket,
    input.partitions,
    input.agentIds ? new Set(input.agentIds) : undefined,
    input.concurrency ?? 16,
    () => parentPort!.postMessage({ kind: 'file' }),
  );
  parentPort!.postMessage({ kind: 'done', result });
} catch (error) {
  parentPort!.postMessage({ kind: 'error', message: (error as Error).message });
}
