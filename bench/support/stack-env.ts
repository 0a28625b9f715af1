/**
 * Imported first by every bench: the local stack's endpoints and credentials
 * (.sluice/stack.env, written by `infra/local/stack up`) into process.env before the bench
 * loads its settings, so it measures the stack `stack up` started. Explicit variables win.
 */
import { describeStackEnv, loadStackEnv } from '../../processors/core/config/stack-env.js';

const line = describeStackEnv(loadStackEnv());
if (line) console.error(`bench: ${line}`);
