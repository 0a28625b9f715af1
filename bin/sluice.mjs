#!/usr/bin/env node
// The `sluice` CLI entry point. The TypeScript sources are compiled to dist/ by
// `npm ci` (the package's prepare script), so this shim only loads the build.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isMainThread } from 'node:worker_threads';

const main = new URL('../dist/processors/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  console.error('sluice: the build is missing (dist/). Run `npm ci` or `npm run build` in the project folder.');
  process.exit(1);
}
// `sluice live` and `sluice files` set their own V8 heap limits: they run in a worker thread
// created with them, decided here, before the CLI loads (processors/core/runtime/v8-heap.ts);
// this same file is the worker's entry.
const heap = await import(new URL('../dist/processors/core/runtime/v8-heap.js', import.meta.url).href);
const args = process.argv.slice(2);
const limits = isMainThread ? await heap.ownHeapLimits(args) : undefined;
if (!limits || !heap.runInHeapLimitedWorker(new URL(import.meta.url), args, limits)) {
  heap.receiveRelayedSignals();
  const { run } = await import(main.href);
  await run(process.argv);
}
