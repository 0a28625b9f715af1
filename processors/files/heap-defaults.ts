/**
 * The files process's V8 heap limits unless SLUICE_FILES_MAX_OLD_SPACE_MB /
 * SLUICE_FILES_MAX_SEMI_SPACE_MB say otherwise (settings.ts documents them). A file of its
 * own: bin/sluice.mjs reads it before anything else loads (core/runtime/v8-heap.ts).
 *
 * V8's defaults, so `sluice files` runs in its main thread, no worker. Its peak RSS stays flat
 * whatever the file size without a small young generation: the dead socket buffers of S3's
 * stream, which grew it, are freed by a young-generation collection every 4 MiB read
 * (getObject in ingest-file.ts, core/runtime/young-gc.ts). A 2 MiB semi-space was the default
 * before; with the collections on every read of the object it is not needed (measured:
 * BENCHMARKS.md, File drops, "One mechanism for the dead socket buffers").
 */
export const HEAP_DEFAULTS = { maxOldSpaceMb: 0, maxSemiSpaceMb: 0 } as const;
