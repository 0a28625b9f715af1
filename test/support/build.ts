import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Compiles processors/ to dist/ (4 s) so a test that runs a processor as a child process
 * runs the code under test, not a stale build. tsc emits even when some other file has a
 * type error (the typecheck step reports those); only a missing output fails.
 */
export function buildDist(entry: string): string {
  const result = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT, encoding: 'utf8' });
  const file = `${ROOT}dist/${entry}`;
  if (!existsSync(file)) throw new Error(`the build did not produce ${file}:\n${result.stdout}${result.stderr}`);
  return file;
}
