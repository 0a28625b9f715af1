import { defineConfig } from 'vitest/config';

/** `npm run test:soak`: the long acceptance runs (test/soak), one at a time, on the real stack. */
export default defineConfig({
  test: {
    include: ['test/soak/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 3_600_000,
    hookTimeout: 600_000,
    reporters: ['default', 'json'],
    outputFile: { json: 'test-results/vitest-soak.json' },
  },
});
