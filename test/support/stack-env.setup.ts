import { loadStackEnv } from '../../processors/core/config/stack-env.js';

/**
 * Vitest setup file: the local stack's endpoints and credentials (.sluice/stack.env, written
 * by `infra/local/stack up`) into process.env before each test file, so the settings every
 * test loads and every process a test spawns talk to that stack. Variables set explicitly win.
 * The global setup (stack-env.global.ts) says which file once; this one only loads it.
 */
loadStackEnv();
