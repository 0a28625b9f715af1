import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { PermanentError } from '../errors/errors.js';
import type { ParquetBatchWriterOptions, ParquetEncoder } from './batch-writer.js';

/**
 * Worker threads that encode Parquet files (parquet-wasm), so a runner's event loop keeps
 * consuming while its files are encoded on another core. A task is the batch as Arrow IPC
 * (its buffer is transferred, not copied) and comes back as the file's bytes.
 *
 * Each thread encodes one file at a time; tasks wait in one queue and go to the first idle
 * thread, so the caller bounds memory by how many files it hands over at once. A thread
 * that dies fails its task (the caller's flush fails and its batch is read again) and is
 * replaced.
 */

export interface EncodeTask {
  id: number;
  ipc: Uint8Array;
  options: ParquetBatchWriterOptions;
}

export type EncodeReply = { id: number; body: Uint8Array; error?: undefined } | { id: number; error: string; body?: undefined };

/** The pool was closed, or its thread died while encoding. */
export class EncodePoolError extends PermanentError {}

const WORKER_FILE = fileURLToPath(new URL('./encode-worker.js', import.meta.url));

interface Pending {
  task: EncodeTask;
  resolve(body: Uint8Array): void;
  reject(error: Error): void;
}

interface Thread {
  worker: Worker;
  busy: Pending | undefined;
}

export class ParquetEncodePool implements ParquetEncoder {
  private readonly threads: Thread[] = [];
  private readonly queue: Pending[] = [];
  private nextId = 1;
  private closed = false;

  /** Whether the pool can run here: the compiled worker file exists (not when run from TypeScript sources). */
  static available(): boolean {
    return existsSync(WORKER_FILE);
  }

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new PermanentError(`an encode pool needs at least one thread, got ${size}`);
    if (!ParquetEncodePool.available()) throw new PermanentError(`${WORKER_FILE} is missing: build the project (npm run build)`);
    for (let i = 0; i < size; i++) this.threads.push(this.spawn());
  }

  encode(ipc: Uint8Array, options: ParquetBatchWriterOptions): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(new EncodePoolError('the encode pool is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ task: { id: this.nextId++, ipc, options: { ...options } }, resolve, reject });
      this.dispatch();
    });
  }

  /** Files waiting for a thread plus files being encoded. */
  get pending(): number {
    return this.queue.length + this.threads.filter((t) => t.busy).length;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.queue.splice(0)) p.reject(new EncodePoolError('the encode pool is closed'));
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
  }

  private dispatch(): void {
    for (const t of this.threads) {
      if (this.queue.length === 0) return;
      if (t.busy) continue;
      const p = this.queue.shift()!;
      t.busy = p;
      const { ipc } = p.task;
      // Transfer the IPC buffer when the view owns all of it; else the structured clone copies the view.
      const transfer = ipc.byteOffset === 0 && ipc.byteLength === ipc.buffer.byteLength ? [ipc.buffer as ArrayBuffer] : [];
      t.worker.postMessage(p.task, transfer);
    }
  }

  private spawn(): Thread {
    const worker = new Worker(WORKER_FILE);
    const thread: Thread = { worker, busy: undefined };
    worker.unref();
    worker.on('message', (reply: EncodeReply) => {
      const p = thread.busy;
      thread.busy = undefined;
      if (p && p.task.id === reply.id) {
        if (reply.error !== undefined) p.reject(new EncodePoolError(`Parquet encoding failed: ${reply.error}`));
        else p.resolve(reply.body);
      }
      this.dispatch();
    });
    const died = (error: Error) => {
      const p = thread.busy;
      thread.busy = undefined;
      p?.reject(new EncodePoolError(`the Parquet encoding thread died: ${error.message}`));
      const i = this.threads.indexOf(thread);
      if (i >= 0 && !this.closed) {
        this.threads[i] = this.spawn();
        this.dispatch();
      }
    };
    worker.on('error', died);
    worker.on('exit', (code) => {
      if (!this.closed && this.threads.includes(thread)) died(new Error(`exited with code ${code}`));
    });
    return thread;
  }
}
