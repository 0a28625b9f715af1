import { parentPort } from 'node:worker_threads';
import { encodeArrowIPC } from './batch-writer.js';
import type { EncodeReply, EncodeTask } from './encode-pool.js';

/** A Parquet encoding thread (see ParquetEncodePool): Arrow IPC in, the Parquet file out (transferred, not copied). */
parentPort!.on('message', (task: EncodeTask) => {
  let reply: EncodeReply;
  try {
    const body = encodeArrowIPC(task.ipc, task.options);
    reply = { id: task.id, body };
    parentPort!.postMessage(reply, [body.buffer as ArrayBuffer]);
  } catch (error) {
    reply = { id: task.id, error: (error as Error).message ?? String(error) };
    parentPort!.postMessage(reply);
  }
});
