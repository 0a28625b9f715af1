/**
 * `npm run bench`: the benches one after another, each in a process of its own (so one's
 * memory and JIT state do not colour the next). BENCH_ONLY picks some by name, e.g.
 * `BENCH_ONLY=export npm run bench` or `BENCH_ONLY=normalizer,export`; any
 * dist/bench/<name>.bench.js can be named (reports, too).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const DEFAULT = ['normalizer', 'normalizer-scale', 'export', 'warehouse', 'reports'];
const dir = fileURLToPath(new URL('.', import.meta.url));
const names = process.env.BENCH_ONLY ? process.env.BENCH_ONLY.split(',').map((s) => s.trim()).filter(Boolean) : DEFAULT;

const failed: string[] = [];
for (const name of names) {
  const file = `${dir}${name}.bench.js`;
  if (!existsSync(file)) {
    console.error(`bench ${name}: ${file} does not exist (benches: bench/*.bench.ts)`);
    failed.push(name);
    continue;
  }
  console.log(`\n=== bench: ${name} ===`);
  const started = Date.now();
  const r = spawnSync(process.execPath, [file], { stdio: 'inherit' });
  console.log(`=== bench ${name}: ${r.status === 0 ? 'done' : `FAILED (exit ${r.status ?? r.signal})`} in ${((Date.now() - started) / 1000).toFixed(0)} s ===`);
  if (r.status !== 0) failed.push(name);
}
if (failed.length > 0) {
  console.error(`failed: ${failed.join(', ')}`);
  process.exit(1);
}
