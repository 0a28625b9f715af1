/**
 * The live process's V8 heap limits unless SLUICE_LIVE_MAX_OLD_SPACE_MB /
 * SLUICE_LIVE_MAX_SEMI_SPACE_MB say otherwise (the settings in settings.ts document them).
 * A file of its own: bin/sluice.mjs reads it before anything else loads, to run `sluice
 * live` in a worker thread created with these limits (core/runtime/v8-heap.ts).
 */
export const HEAP_DEFAULTS = { maxOldSpaceMb: 128, maxSemiSpaceMb: 4 } as const;
