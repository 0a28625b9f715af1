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
const { run } = await import(main.href);
await run(process.argv);
