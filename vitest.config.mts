import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Each file in its own process: every file gets a fresh engine and its own fd table.
    pool: 'forks',
    // Socket-heavy files in parallel on a 2-core machine make timing noise, not coverage.
    fileParallelism: false,
    reporters: ['default'],
  },
});
