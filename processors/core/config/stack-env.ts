import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseEnv } from 'node:util';

/**
 * The local stack's endpoints and credentials. `infra/local/stack up` writes them to
 * `.sluice/stack.env` (S3 endpoint and keys, region, brokers, registry, database, Kafka
 * Connect), and they are the only place local values come from: the settings' defaults
 * are for production (AWS S3 with the default credential chain; brokers and the other
 * servers named explicitly). The CLI and the test suite load this file into the
 * environment, so every command and every process they start talk to the stack that
 * `stack up` started, on the ports it was given. Variables set explicitly win.
 *
 * Which file: `SLUICE_STACK_ENV` (a path, or `off` to load none), else
 * `$SLUICE_STATE_DIR/stack.env`, else `.sluice/stack.env` in the project root (the folder
 * of Sluice's package.json, where infra/local/stack keeps its state). A missing file is
 * not an error: production has none.
 */
export interface StackEnvLoad {
  file: string;
  /** The variables taken from the file (those not set explicitly). */
  applied: string[];
}

/** Values this process took from a stack file, so that a re-read after `stack up` replaces them. */
const fromStackFile = new WeakMap<NodeJS.ProcessEnv, Map<string, string>>();

/** The folder holding Sluice's package.json: the project root, from src/ or dist/ alike. */
export function projectRoot(from: string = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) return from;
  }
}

/** The stack env file this environment points at, or undefined when loading is switched off. */
export function stackEnvFile(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const chosen = env.SLUICE_STACK_ENV?.trim();
  if (chosen && ['off', 'none', 'false', '0'].includes(chosen.toLowerCase())) return undefined;
  if (chosen) return resolve(chosen);
  if (env.SLUICE_STATE_DIR) return join(resolve(env.SLUICE_STATE_DIR), 'stack.env');
  return join(projectRoot(), '.sluice', 'stack.env');
}

/**
 * Loads the stack env file into `env` (process.env by default): each variable that is unset
 * or empty, or that an earlier load of a stack file set, takes the file's value. Returns
 * which file was used, or undefined when there is none.
 */
export function loadStackEnv(env: NodeJS.ProcessEnv = process.env): StackEnvLoad | undefined {
  const file = stackEnvFile(env);
  if (!file || !existsSync(file)) return undefined;
  const values = parseEnv(readFileSync(file, 'utf8'));
  const applied: string[] = [];
  const taken = fromStackFile.get(env) ?? new Map<string, string>();
  fromStackFile.set(env, taken);
  for (const [name, value] of Object.entries(values)) {
    if (value === undefined) continue;
    const current = env[name];
    const explicit = current !== undefined && current !== '' && taken.get(name) !== current;
    if (explicit) continue;
    env[name] = value;
    taken.set(name, value);
    applied.push(name);
  }
  return { file, applied };
}

/** The one line that says where a process's local endpoints came from. */
export function describeStackEnv(load: StackEnvLoad | undefined): string | undefined {
  if (!load) return undefined;
  return load.applied.length > 0
    ? `local stack settings from ${load.file} (${load.applied.length} variables; variables set in the environment win)`
    : `local stack settings file ${load.file} found; every variable it sets is already set in the environment, which wins`;
}
