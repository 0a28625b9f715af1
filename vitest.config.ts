import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The soak (1M events) runs apart: npm run test:soak.
    exclude: ['test/soak/**', '**/node_modules/**'],
    // Integration tests share one local stack (and some stop and start parts of it):
    // files run one after another; 2 cores would gain little from parallel files anyway.
    fileParallelism: false,
    // The local stack's endpoints (.sluice/stack.env) for every test and the processes it starts.
    globalSetup: ['test/support/stack-env.global.ts'],
    setupFiles: ['test/support/stack-env.setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    // The JSON report feeds .ci/run's one-line summary.
    reporters: ['default', 'json'],
    outputFile: { json: 'test-results/vitest.json' },
  },
});
