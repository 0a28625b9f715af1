import { HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { sleep } from '../core/errors/retry.js';
import { ingestObject, type FileIngestDeps } from './ingest-file.js';
import { isFinal } from './ledger.js';
import { redispose } from './outputs.js';
import type { FileSource } from './settings.js';

/**
 * Finds the files: lists incoming/<source>/ of every source a page at a time, from a cursor
 * saved in Postgres after each page (ListObjectsV2 StartAfter), so a restart in a prefix of
 * millions of keys goes on where it stopped; at the end of the prefix the cursor goes back
 * to its start, so a new key that sorts before it is found on the next pass. Objects are
 * taken one at a time in key order; several instances share the work (each file is locked
 * by the one that has it). The age of the oldest object still waiting is a metric.
 */
export class FileWatcher {
  private passes = 0;

  constructor(
    private readonly deps: FileIngestDeps,
    private readonly bucket: string,
  ) {}

  /** Polls every source until the signal stops it. */
  async run(): Promise<void> {
    const { signal } = this.deps;
    while (!signal.aborted) {
      try {
        await this.pollOnce();
      } catch (error) {
        if (signal.aborted) break;
        this.deps.logger.warn({ err: error }, 'listing the incoming files failed; trying again at the next poll');
      }
      await sleep(this.deps.settings.pollIntervalMs, signal).catch(() => undefined);
    }
  }

  /** One pass over every source's prefix, from its cursor to its end. */
  async pollOnce(): Promise<void> {
    this.passes++;
    for (const source of this.deps.settings.sources) {
      if (this.deps.signal.aborted) return;
      await this.scan(source);
    }
  }

  private async scan(source: FileSource): Promise<void> {
    const { deps, bucket } = this;
    const { ledger, settings: s, logger } = deps;
    const prefix = `${s.incomingPrefix}${source.name}/`;
    let startAfter = await ledger.cursor(bucket, prefix);
    const waiting = new Map<string, number>();
    for (;;) {
      const page = await deps.s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, MaxKeys: s.listPageSize, ...(startAfter ? { StartAfter: startAfter } : {}) }), { abortSignal: deps.signal });
      const objects = (page.Contents ?? []).filter((o) => o.Key && !o.Key.endsWith('/'));
      const known = await ledger.statuses(bucket, objects.map((o) => o.Key!));
      for (const o of objects) if (!(known.get(o.Key!) ?? []).some((r) => isFinal(r.status) && r.version === o.ETag)) waiting.set(o.Key!, o.LastModified?.getTime() ?? Date.now());
      this.reportLag(source.name, waiting);
      for (const o of objects) {
        if (deps.signal.aborted) return;
        const key = o.Key!;
        try {
          const head = await deps.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: deps.signal });
          const etag = head.ETag ?? o.ETag ?? '';
          const version = head.VersionId && head.VersionId !== 'null' ? head.VersionId : etag;
          const identity = { bucket, key, version, etag, source: source.name, size: head.ContentLength ?? o.Size ?? 0, lastModified: head.LastModified ?? o.LastModified ?? new Date() };
          const result = await ingestObject(deps, source, identity);
          if (result.outcome === 'skipped' && result.why === 'final' && s.afterProcessing === 'move') {
            // The very same object again under the same key (or a move cut short): moved like the first.
            await redispose(deps, bucket, key, version);
          }
          if (result.outcome !== 'skipped' || result.why === 'final') waiting.delete(key);
        } catch (error) {
          if (deps.signal.aborted) return;
          logger.error({ err: error, key }, 'file not processed; it is tried again at the next poll');
        }
        this.reportLag(source.name, waiting);
      }
      if (!page.IsTruncated || objects.length === 0) {
        if (startAfter !== '') await ledger.saveCursor(bucket, prefix, '');
        return;
      }
      startAfter = page.Contents![page.Contents!.length - 1]!.Key!;
      await ledger.saveCursor(bucket, prefix, startAfter);
    }
  }

  private reportLag(source: string, waiting: ReadonlyMap<string, number>): void {
    this.deps.metrics.oldestUnprocessed.set({ source }, oldestWaitingSeconds(waiting.values(), Date.now()));
  }

  get passCount(): number {
    return this.passes;
  }
}

/**
 * Seconds the oldest waiting object has waited (0 when none waits): the lag alert's gauge.
 * A loop, not Math.min(...times): a spread passes every time as an argument and throws a
 * RangeError past ~100k waiting objects (a backlog after an outage can be that large).
 */
export function oldestWaitingSeconds(since: Iterable<number>, now: number): number {
  let oldest = Infinity;
  for (const t of since) if (t < oldest) oldest = t;
  return oldest === Infinity ? 0 : Math.max(0, (now - oldest) / 1000);
}
