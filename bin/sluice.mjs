#!/usr/bin/env node
// The `sluice` CLI entry point. The TypeScript sources are compiled to dist/ by
// `npm ci` (the package's prepare script), so this shim only loads the build.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/processors/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  console.error('sluice: the build is missing (dist/). Run `npm ci` or `npm run build` in the project folder.');
  process.exit(1);
}
// `sluice live` sets its own V8 heap limits: it runs itself again with them, decided here,
// before the CLI loads (processors/core/runtime/v8-heap.ts).
const heap = await import(new URL('../dist/processors/core/runtime/v8-heap.js', import.meta.url).href);
if (heap.commandOf(process.argv.slice(2)) === 'live') {
  const { LIVE_HEAP_DEFAULTS } = await import(new URL('../dist/processors/live/heap-defaults.js', import.meta.url).href);
  await heap.relaunchWithHeapLimits(heap.heapLimitsFromEnv('SLUICE_LIVE_', LIVE_HEAP_DEFAULTS));
}
// `sluice files` too: a small young generation keeps its peak RSS flat (processors/files/heap-defaults.ts).
if (heap.commandOf(process.argv.slice(2)) === 'files') {
  const { FILES_HEAP_DEFAULTS } = await import(new URL('../dist/processors/files/heap-defaults.js', import.meta.url).href);
  await heap.relaunchWithHeapLimits(heap.heapLimitsFromEnv('SLUICE_FILES_', FILES_HEAP_DEFAULTS));
}
const { run } = await import(main.href);
await run(process.argv);
