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
// `sluice live` and `sluice files` set their own V8 heap limits: they run themselves again
// with them, decided here, before the CLI loads (processors/core/runtime/v8-heap.ts).
const heap = await import(new URL('../dist/processors/core/runtime/v8-heap.js', import.meta.url).href);
const limits = await heap.ownHeapLimits(process.argv.slice(2));
if (limits) await heap.relaunchWithHeapLimits(limits);
const { run } = await import(main.href);
await run(process.argv);
