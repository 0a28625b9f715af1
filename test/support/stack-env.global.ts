import { describeStackEnv, loadStackEnv, stackEnvFile } from '../../processors/core/config/stack-env.js';

/** Vitest global setup: says once which stack env file the tests use (stack-env.setup.ts loads it in each worker). */
export default function setup(): void {
  const line = describeStackEnv(loadStackEnv());
  console.error(line ? `tests: ${line}` : `tests: no local stack settings file at ${stackEnvFile() ?? '(SLUICE_STACK_ENV=off)'}; the servers come from the environment`);
}
