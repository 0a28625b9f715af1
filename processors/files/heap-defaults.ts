/**
 * The files process's V8 heap limits unless SLUICE_FILES_MAX_OLD_SPACE_MB /
 * SLUICE_FILES_MAX_SEMI_SPACE_MB say otherwise (settings.ts documents them). A file of its
 * own: bin/sluice.mjs reads it before anything else loads, to run `sluice files` in a worker
 * thread created with these limits (core/runtime/v8-heap.ts).
 *
 * A young generation of 2 MiB semi-spaces instead of V8's 16: the object's bytes pass
 * through the ingest thread as S3's socket buffers (the SHA-256 pass, then the feed to the
 * parsing thread), and a buffer no longer used is freed only at the next scavenge of its
 * small wrapper; with a large young generation that came seldom, tens of MiB of dead
 * buffers piled up and the peak RSS grew with the file (+30-46 MiB from 100k to 1M rows).
 * The SHA-256 pass, which allocates almost nothing on the heap, now also asks for a scavenge
 * every 4 MiB (ingest-file.ts, core/runtime/young-gc.ts); the small young generation still
 * bounds the feed to the parsing thread (BENCHMARKS.md, File drops).
 */
export const HEAP_DEFAULTS = { maxOldSpaceMb: 0, maxSemiSpaceMb: 2 } as const;

