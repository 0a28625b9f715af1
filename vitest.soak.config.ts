import { defineConfig } from 'vitest/config';

/** `npm run test:soak`: the long acceptance runs (test/soak), one at a time, on the real stack. */
export default defineConfig({
  test: {
    include: ['test/soak/**/*.test.ts'],
    fileParallelism: false,
    // The local stack's endpoints (.sluice/stack.env) for every test and the processes it starts.
    globalSetup: ['test/support/stack-env.global.ts'],
    setupFiles: ['test/support/stack-env.setup.ts'],
    testTimeout: 3_600_000,
    hookTimeout: 600_000,
    reporters: ['default', 'json'],
    outputFile: { json: 'test-results/vitest-soak.json' },
  },
});
